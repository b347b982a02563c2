"""Exit codes of every `gate` command, and the one table mapping exceptions onto them."""

from __future__ import annotations

from enum import IntEnum

from .errors import AllowlistError, ConfigError, GateError


class Exit(IntEnum):
    OK = 0
    FAILURE = 1     # the command could not do its job (camera, relay, journal, server...)
    CONFIG = 2      # the config, a file it names, or a command-line value is wrong
    NEGATIVE = 3    # ran fine, the answer is no: `status` not running, `test-camera` no code


# First match wins: subclasses before their bases.
EXCEPTION_EXITS: tuple[tuple[type[BaseException], Exit], ...] = (
    (ConfigError, Exit.CONFIG),
    (AllowlistError, Exit.CONFIG),
    (GateError, Exit.FAILURE),
)


def exit_for(exc: BaseException) -> Exit:
    """The exit code for an exception; anything unexpected is a failure."""
    for kind, code in EXCEPTION_EXITS:
        if isinstance(exc, kind):
            return code
    return Exit.FAILURE
