"""What an accepted remote command does at the door: each one journaled, none on the frame
loop's path (they run on the MQTT client's thread)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from ..journal import Journal, SystemEvent
from ..verify.lockdown import Lockdown
from .commands import Command

log = logging.getLogger(__name__)


class DoorLike(Protocol):
    def release(self, open_s: float) -> None: ...
    def lock(self) -> None: ...


class RemoteControl:
    """unlock: handed to `unlock(command_id)`, the gate's one decision path (journaled
    before the relay moves, denied `lockdown` during a lockdown, `[journal] on_write_error`
    honoured); lock: end a pulse now; lockdown on|off: persisted, shown on the indicators,
    journaled; sync: a credential sync now (without a server, a reload of the allowlist)."""

    def __init__(self, door: DoorLike, journal: Journal, lockdown: Lockdown,
                 unlock: Callable[[str], None], show_lockdown: Callable[[bool], None],
                 sync_now: Callable[[], None]) -> None:
        self.door = door
        self.journal = journal
        self.lockdown = lockdown
        self.unlock = unlock
        self.show_lockdown = show_lockdown
        self.sync_now = sync_now

    def __call__(self, command: Command) -> None:
        if command.cmd == "unlock":
            self.unlock(command.id)
        elif command.cmd == "lock":
            self.door.lock()
            log.info("remote: lock (command %s)", command.id)
        elif command.cmd == "lockdown":
            on = command.state == "on"
            self.lockdown.set(on)
            self.show_lockdown(on)
            self.journal.record(SystemEvent("lockdown", extra={
                "state": "on" if on else "off", "command_id": command.id}))
            log.warning("remote: lockdown %s (command %s)", command.state, command.id)
        elif command.cmd == "sync":
            self.sync_now()
            log.info("remote: sync (command %s)", command.id)
