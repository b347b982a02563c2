"""Exception tree: every gate error is a GateError and also the builtin it resembles."""

from __future__ import annotations


class GateError(Exception):
    """Root of every error the gate raises on purpose."""


class ConfigError(GateError, ValueError):
    """The configuration is invalid; `problems` names file, key and problem for each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class CameraError(GateError, RuntimeError):
    """The camera cannot be opened or has stopped delivering frames."""


class CameraStalled(CameraError):
    """No frame arrived within the stall timeout: exit non-zero so systemd restarts us."""


class DecoderUnavailable(GateError, RuntimeError):
    """The chosen decoder backend cannot be loaded (missing package or system library)."""


class AllowlistError(GateError, ValueError):
    """The allowlist file is missing, unreadable or has no usable header."""


class RelayFault(GateError, RuntimeError):
    """The relay could not be driven locked even after retries: the door's state is unknown,
    so the daemon exits non-zero (systemd restarts it; `ExecStopPost=gate relay-off` locks)."""


class JournalError(GateError, OSError):
    """An event could not be committed to the journal (disk full, read-only, I/O error)."""
