"""What an accepted remote command does at the door: each one journaled, none on the frame
loop's path (they run on the MQTT client's thread)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol

from ..journal import Journal
from ..verify.lockdown import Lockdown
from .commands import Command

log = logging.getLogger(__name__)


class DoorLike(Protocol):
    def release(self, open_s: float) -> None: ...
    def lock(self) -> None: ...


class RemoteControl:
    """unlock: one pulse, journaled as a decision with source `remote` (denied with reason
    `lockdown` during a lockdown: lift it first); lock: end a pulse now; lockdown on|off:
    persisted, shown on the indicators, journaled; sync: a credential sync now (without a
    server, a reload of the allowlist)."""

    def __init__(self, door: DoorLike, journal: Journal, lockdown: Lockdown,
                 open_s: Callable[[], float], show_lockdown: Callable[[bool], None],
                 sync_now: Callable[[], None]) -> None:
        self.door = door
        self.journal = journal
        self.lockdown = lockdown
        self.open_s = open_s
        self.show_lockdown = show_lockdown
        self.sync_now = sync_now

    def __call__(self, command: Command) -> None:
        if command.cmd == "unlock":
            self._unlock(command)
        elif command.cmd == "lock":
            self.door.lock()
            log.info("remote: lock (command %s)", command.id)
        elif command.cmd == "lockdown":
            on = command.state == "on"
            self.lockdown.set(on)
            self.show_lockdown(on)
            self.journal.record("system", event="lockdown", state="on" if on else "off",
                                command_id=command.id)
            log.warning("remote: lockdown %s (command %s)", command.state, command.id)
        elif command.cmd == "sync":
            self.sync_now()
            log.info("remote: sync (command %s)", command.id)

    def _unlock(self, command: Command) -> None:
        started = time.monotonic_ns()
        open_s = self.open_s()
        if self.lockdown.on:
            verdict, reason = "deny", "lockdown"
        else:
            verdict, reason = "grant", "ok"
            self.door.release(open_s)
        latency_ms = (time.monotonic_ns() - started) / 1e6
        self.journal.record("decision", verdict=verdict, reason=reason, source="remote",
                            label="", credential_id=None, code_sha256=None,
                            latency_ms=round(latency_ms, 2), command_id=command.id)
        log.info("decision: %s (%s) source=remote command=%s", verdict, reason, command.id)
