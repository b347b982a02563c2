"""Journaling as the running gate does it: a failed write is the `journal` fault, never a
crash; and the relay's changes and faults routed to the parts that follow the door."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from .errors import JournalError
from .faults import Faults
from .journal import DoorEvent, Event, Journal, SystemEvent

log = logging.getLogger("gate")


class Recorder:
    """The journal plus the `journal` fault: every event the gate writes goes through here."""

    def __init__(self, journal: Journal, faults: Faults) -> None:
        self.journal = journal
        self.faults = faults

    def record(self, event: Event, *, durable: bool = True) -> bool:
        """Journal one event; False (and the `journal` fault) if it could not be committed.
        `durable=False` commits without the fsync: call `sync` right after."""
        try:
            if durable:
                self.journal.record(event)
            else:
                self.journal.write(event)
        except JournalError as exc:
            log.error("%s", exc)
            self.faults.set("journal", True)
            return False
        self.faults.set("journal", False)
        return True

    def sync(self) -> None:
        """fsync what `record(durable=False)` committed; a failure is the `journal` fault."""
        try:
            self.journal.sync()
        except JournalError as exc:
            log.error("%s", exc)
            self.faults.set("journal", True)


class DoorEvents:
    """The door's `on_change` and `on_fault`. The door is built before the inputs and
    indicators that follow it, so they subscribe as they are built (`follow`, `on_fatal`);
    every change is journaled, and a relay that cannot be locked stops the frame loop."""

    def __init__(self, recorder: Recorder, stop: threading.Event) -> None:
        self.recorder = recorder
        self.stop = stop
        self._followers: list[Callable[[str], None]] = []
        self._on_fatal: list[Callable[[], None]] = []

    def follow(self, callback: Callable[[str], None], *, first: bool = False) -> None:
        """`callback(state)` on every relay change; `first` ahead of those already here."""
        self._followers.insert(0, callback) if first else self._followers.append(callback)

    def on_fatal(self, callback: Callable[[], None]) -> None:
        self._on_fatal.append(callback)

    def changed(self, state: str) -> None:
        for follower in list(self._followers):
            follower(state)
        log.info("relay: %s", state)
        self.recorder.record(DoorEvent(state))

    def fault(self, detail: str, recovered: bool) -> None:
        """From the door (any thread): a relay write raised. Recovered: journaled, running on.
        Not: the `relay` fault, and the frame loop ends (woken through `stop`)."""
        log.error("relay fault: %s", detail)
        self.recorder.record(SystemEvent("error", extra={"where": "relay", "detail": detail,
                                                         "recovered": recovered}))
        if not recovered:
            self.recorder.faults.set("relay", True)
            for callback in list(self._on_fatal):
                callback()
            self.stop.set()
