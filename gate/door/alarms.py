"""The door monitor: reads the door contact against the relay, journals the door opening and
closing, and raises the held-open and forced-open alarms."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from ..journal import AlarmEvent, DoorEvent, Journal
from .inputs import DoorContact
from .relay import LOCKED, UNLOCKED

log = logging.getLogger(__name__)

HELD_OPEN, FORCED_OPEN = "held_open", "forced_open"
OPEN, CLOSED = "open", "closed"


class DoorMonitor:
    """Watches one door.

    - Every settled change of the contact is a `door` event with `state` open or closed.
    - held_open: the door has been open longer than `held_open_s` (0: never); raised once
      per opening, cleared when it closes.
    - forced_open: the door opened while the relay was locked, more than `grace_s` after the
      relay last relocked (a door let go at the end of a pulse may still be swinging shut,
      and the contact settles a little after the door moves); cleared when it closes. A grant,
      the exit button and the staff button all release the relay, so each of them makes an
      opening authorised for as long as the relay is released, plus the grace.
    Alarms are `alarm` events: `{"alarm": "held_open"|"forced_open", "event": "raised"|
    "cleared", "open_for_s"}`. `on_change()` is told after every change, for the status file.

    The relay state comes from `relay_changed()` (wire it to Door's on_change) and
    `is_unlocked()`; a monitor thread runs the held-open timer and re-reads the contact every
    `resync_s`, in case an edge was lost.
    """

    def __init__(self, contact: DoorContact, journal: Journal, *,
                 is_unlocked: Callable[[], bool], held_open_s: float, grace_s: float,
                 on_change: Callable[[], None] | None = None, resync_s: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.contact = contact
        self.journal = journal
        self.is_unlocked = is_unlocked
        self.held_open_s = held_open_s
        self.grace_s = grace_s
        self.on_change = on_change or (lambda: None)
        self.resync_s = resync_s
        self._clock = clock
        self._cond = threading.Condition()
        self._closed = False
        self._relocked_at: float | None = None
        self._released = False  # told of an unlock and not yet of the relock
        self.state = OPEN if contact.is_open else CLOSED
        self._opened_at: float | None = clock() if self.state == OPEN else None
        self.alarms: set[str] = set()
        if self.state == OPEN:  # how it came to be open is unknown: no forced alarm
            self._record(DoorEvent(OPEN, extra={"initial": True}))
        contact.when_opened = self._contact_opened
        contact.when_closed = self._contact_closed
        self._thread = threading.Thread(target=self._run, name="door-monitor", daemon=True)
        self._thread.start()

    # -- inputs ------------------------------------------------------------------------------

    def relay_changed(self, state: str) -> None:
        with self._cond:
            if state == LOCKED:
                self._relocked_at = self._clock()
                self._released = False
            elif state == UNLOCKED:
                self._released = True

    def _contact_opened(self) -> None:
        self._apply(OPEN)

    def _contact_closed(self) -> None:
        self._apply(CLOSED)

    def _apply(self, state: str) -> None:
        with self._cond:
            if self._closed or state == self.state:
                return
            now = self._clock()
            self.state = state
            if state == OPEN:
                self._opened_at = now
                self._record(DoorEvent(OPEN))
                if self._forced(now):
                    self._raise(FORCED_OPEN, now)
            else:
                open_for = now - self._opened_at if self._opened_at is not None else None
                self._opened_at = None
                self._record(DoorEvent(CLOSED, extra={
                    "open_for_s": None if open_for is None else round(open_for, 2)}))
                for alarm in sorted(self.alarms):
                    self._record(AlarmEvent(alarm, "cleared", extra={
                        "open_for_s": None if open_for is None else round(open_for, 2)}))
                    log.warning("alarm cleared: %s (door closed)", alarm)
                self.alarms.clear()
            self._cond.notify()
        self._changed()

    def _forced(self, now: float) -> bool:
        if self._released or self.is_unlocked():
            return False
        if self._relocked_at is not None and now - self._relocked_at <= self.grace_s:
            return False
        return True

    # -- alarms ------------------------------------------------------------------------------

    def _raise(self, alarm: str, now: float) -> None:
        self.alarms.add(alarm)
        open_for = now - self._opened_at if self._opened_at is not None else 0.0
        self._record(AlarmEvent(alarm, "raised", extra={"open_for_s": round(open_for, 2)}))
        log.warning("ALARM: %s", alarm.replace("_", " "))

    def _record(self, event: DoorEvent | AlarmEvent) -> None:
        try:
            self.journal.record(event)
        except Exception:  # the monitor must keep watching even if the journal fails
            log.exception("door monitor: journaling %s failed", event)
        if isinstance(event, DoorEvent):
            log.info("door: %s", event.state)

    def _changed(self) -> None:
        try:
            self.on_change()
        except Exception:
            log.exception("door monitor: on_change failed")

    def _run(self) -> None:
        while True:
            raised = False
            with self._cond:
                if self._closed:
                    return
                wait = self.resync_s
                if (self.state == OPEN and self.held_open_s > 0 and HELD_OPEN not in self.alarms
                        and self._opened_at is not None):
                    now = self._clock()
                    due = self._opened_at + self.held_open_s
                    if now >= due:
                        self._raise(HELD_OPEN, now)
                        raised = True
                    else:
                        wait = min(wait, due - now)
                if not raised:
                    self._cond.wait(wait)
            if raised:
                self._changed()
            else:
                self._resync()

    def _resync(self) -> None:
        """Catch up with the contact if an edge was lost; only a level that has outlasted
        the settle time counts (read twice, `settle_s` apart)."""
        try:
            first = OPEN if self.contact.is_open else CLOSED
            if first == self.state:
                return
            settle = getattr(self.contact, "_settle_s", 0) or 0
            if settle and self._wait_closed(settle):
                return
            if (OPEN if self.contact.is_open else CLOSED) == first:
                self._apply(first)
        except Exception:  # a closed device at shutdown, for one
            if not self._closed:
                log.exception("door monitor: reading the contact failed")

    def _wait_closed(self, seconds: float) -> bool:
        with self._cond:
            if not self._closed:
                self._cond.wait(seconds)
            return self._closed

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def snapshot(self) -> dict[str, object]:
        with self._cond:
            return {"contact": self.state, "alarms": sorted(self.alarms)}

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self.contact.when_opened = None
        self.contact.when_closed = None
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)
