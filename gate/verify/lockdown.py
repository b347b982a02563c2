"""Lockdown: a remote switch that denies everyone except a staff override.

While on, a grant from any verifier becomes a deny with reason `lockdown`; a `staff` verdict
stays `staff`, so a person at the door can still let a known holder in with the staff
button. The state is kept in a small file so it survives a restart: a power cut or a crash
must not lift a lockdown (only `lockdown off` does)."""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import replace
from pathlib import Path

from .decision import Decision, Verifier

log = logging.getLogger(__name__)


class Lockdown:
    """The persisted on/off state; thread-safe (set from the MQTT thread, read per decision)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._on = self._load()

    def _load(self) -> bool:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return False
        except (OSError, ValueError, UnicodeDecodeError):
            # A file we cannot read was written for a reason: fail closed.
            log.error("lockdown: %s unreadable; staying in lockdown until 'lockdown off'",
                      self.path)
            return True
        on = data.get("on") if isinstance(data, dict) else None
        if not isinstance(on, bool):
            log.error("lockdown: %s malformed; staying in lockdown until 'lockdown off'",
                      self.path)
            return True
        return on

    @property
    def on(self) -> bool:
        return self._on

    def set(self, on: bool) -> bool:
        """Switch and persist (atomically, fsynced); returns whether the state changed."""
        with self._lock:
            changed = on != self._on
            tmp = self.path.with_suffix(".tmp")
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump({"on": on}, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
            self._on = on
            return changed


class LockdownChain:
    """Wraps the verifier chain: during a lockdown a grant is a deny (`lockdown`)."""

    def __init__(self, inner: Verifier, lockdown: Lockdown) -> None:
        self.inner = inner
        self.lockdown = lockdown

    def check(self, code_sha256: str, code: bytes, now: float) -> Decision:
        decision = self.inner.check(code_sha256, code, now)
        if decision is None:
            decision = Decision(verdict="deny", reason="unknown", source="none")
        if self.lockdown.on and decision.verdict == "grant":
            return replace(decision, verdict="deny", reason="lockdown", open_s=None)
        return decision
