"""The door: the relay that releases the strike, and the timed pulse that locks it again."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from gpiozero import DigitalOutputDevice
from gpiozero.pins import Factory

log = logging.getLogger(__name__)

UNLOCKED, LOCKED = "unlocked", "locked"


class Relay(DigitalOutputDevice):
    """The door strike or turnstile relay: `on()` releases the door, `off()` locks it.

    Built with `initial_value=False`, so the line is driven to "locked" the moment the pin is
    claimed. `active_high=False` serves the common relay boards that switch on a LOW input.
    Wire the strike fail-secure (no coil current = locked) so that a dead Pi, a released
    GPIO line or a power cut all leave the door locked.
    """

    def __init__(self, pin: int | str, *, active_high: bool = True,
                 pin_factory: Factory | None = None) -> None:
        super().__init__(pin, active_high=active_high, initial_value=False,
                         pin_factory=pin_factory)


class Door:
    """Pulses the relay: `release(open_s)` unlocks now and locks after `open_s`; a release
    while already open extends the pulse. A timer thread does the locking.

    `on_change(state)` is told of every relay change ("unlocked"/"locked"), in order.
    """

    def __init__(self, relay: Relay, on_change: Callable[[str], None] | None = None) -> None:
        self.relay = relay
        self.on_change = on_change or (lambda state: None)
        relay.off()  # locked before anything else, whatever state the pin was left in
        self._cond = threading.Condition()
        self._deadline: float | None = None  # monotonic seconds; None = locked
        self._closed = False
        self._timer = threading.Thread(target=self._run, name="door-timer", daemon=True)
        self._timer.start()

    @property
    def is_unlocked(self) -> bool:
        return bool(self.relay.is_active)

    def release(self, open_s: float) -> None:
        """Unlock for `open_s` seconds from now (or longer, if already unlocked for longer)."""
        with self._cond:
            if self._closed:
                return
            deadline = time.monotonic() + open_s
            if self._deadline is None or deadline > self._deadline:
                self._deadline = deadline
            if not self.relay.is_active:
                self.relay.on()
                self._changed(UNLOCKED)
            self._cond.notify()

    def lock(self) -> None:
        """Lock now, ending any pulse."""
        with self._cond:
            self._lock_now()
            self._cond.notify()

    def close(self) -> None:
        """Lock and release the relay; safe to call more than once and from any exit path."""
        with self._cond:
            self._closed = True
            try:
                self._lock_now()
            finally:
                self._cond.notify()
        self._timer.join(timeout=1.0)
        self.relay.close()

    def _lock_now(self) -> None:
        self._deadline = None
        if self.relay.closed:
            return
        was_unlocked = bool(self.relay.is_active)
        self.relay.off()
        if was_unlocked:
            self._changed(LOCKED)

    def _changed(self, state: str) -> None:
        try:
            self.on_change(state)
        except Exception:  # a journal failure must never leave the relay in a wrong state
            log.exception("door: recording relay change %s failed", state)

    def _run(self) -> None:
        with self._cond:
            while not self._closed:
                if self._deadline is None:
                    self._cond.wait()
                    continue
                remaining = self._deadline - time.monotonic()
                if remaining > 0:
                    self._cond.wait(remaining)
                    continue
                try:
                    self._lock_now()
                except Exception:  # keep the timer alive; close() will retry the lock
                    log.exception("door: locking the relay failed")
