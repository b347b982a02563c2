"""The door: the relay that releases the strike, and the timed pulse that locks it again."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable

from gpiozero import DigitalOutputDevice
from gpiozero.pins import Factory

from ..errors import RelayFault

log = logging.getLogger(__name__)

UNLOCKED, LOCKED = "unlocked", "locked"


# A relay write that raises is tried again this many times, this far apart, before the relay
# counts as failed (a line the kernel briefly refuses, an I2C expander that NAKs once).
WRITE_ATTEMPTS = 3
RETRY_PAUSE_S = 0.01
# After a failed lock the timer keeps trying this often until the daemon has exited.
RELOCK_INTERVAL_S = 0.1

# on_fault(detail, recovered): a relay write raised; recovered = a retry then succeeded.
FaultCallback = Callable[[str, bool], None]


class Relay(DigitalOutputDevice):
    """The door strike or turnstile relay: `on()` releases the door, `off()` locks it.

    Built with `initial_value=False`, so the line is driven to "locked" the moment the pin is
    claimed. `active_high=False` serves the common relay boards that switch on a LOW input.
    Wire the strike fail-secure (no coil current = locked) so that a dead Pi, a released
    GPIO line or a power cut all leave the door locked.
    """

    def __init__(self, pin: int | str, *, active_high: bool = True,
                 pin_factory: Factory | None = None) -> None:
        try:
            super().__init__(pin, active_high=active_high, initial_value=False,
                             pin_factory=pin_factory)
        except BaseException:
            # gpiozero keeps the pin reserved when the first write raises: free it, so a
            # retry (or relay-off) can claim it again.
            with contextlib.suppress(Exception):
                self.close()
            raise


class Door:
    """Pulses the relay: `release(open_s)` unlocks now and locks after `open_s`; a release
    while already open extends the pulse. A timer thread does the locking.

    `on_change(state)` is told of every relay change ("unlocked"/"locked"), in order.
    A relay write that raises is retried (`WRITE_ATTEMPTS`); `on_fault(detail, recovered)`
    is told either way. A lock that still fails marks the door `failed` (for good: the
    daemon must exit so systemd restarts it), refuses every release, and the timer keeps
    trying to lock every `RELOCK_INTERVAL_S` until `close()`.
    """

    def __init__(self, relay: Relay, on_change: Callable[[str], None] | None = None,
                 on_fault: FaultCallback | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.relay = relay
        self.clock = clock  # monotonic seconds; tests inject a fake and call poll()
        self.on_change = on_change or (lambda state: None)
        self.on_fault = on_fault or (lambda detail, recovered: None)
        self.failed: str | None = None  # why the relay could not be locked; None = fine
        self._cond = threading.Condition()
        self._deadline: float | None = None  # monotonic seconds; None = locked
        self._closed = False
        self._drive_off()  # locked before anything else, whatever state the pin was left in
        self._timer = threading.Thread(target=self._run, name="door-timer", daemon=True)
        self._timer.start()

    @property
    def is_unlocked(self) -> bool:
        return bool(self.relay.is_active)

    def release(self, open_s: float) -> None:
        """Unlock for `open_s` seconds from now (or longer, if already unlocked for longer).
        Raises RelayFault if the relay has failed or could not be driven (then it is locked
        again, or the door is marked failed)."""
        with self._cond:
            if self._closed:
                return
            if self.failed is not None:
                raise RelayFault(f"relay failed, not releasing: {self.failed}")
            deadline = self.clock() + open_s
            if self._deadline is None or deadline > self._deadline:
                self._deadline = deadline
            if not self.relay.is_active:
                try:
                    self.relay.on()
                except Exception as exc:  # state unknown: lock it (with retries), report
                    self._report(f"unlock failed: {exc!r}", recovered=True)
                    self._lock_now()
                    raise RelayFault(f"the relay could not be released: {exc!r}") from exc
                self._changed(UNLOCKED)
            self._cond.notify()

    def lock(self) -> None:
        """Lock now, ending any pulse; raises RelayFault if the relay cannot be locked."""
        with self._cond:
            try:
                self._lock_now()
            finally:
                self._cond.notify()

    def close(self) -> None:
        """Lock and release the relay; safe to call more than once and from any exit path.
        Never raises: a relay that cannot be locked is left in `failed` and its pin released
        (a freed line falls back to its pull, which the wiring rules make "locked")."""
        with self._cond:
            self._closed = True
            try:
                self._lock_now()
            except RelayFault:
                log.error("door: the relay could not be locked at close: %s", self.failed)
            finally:
                self._cond.notify()
        self._timer.join(timeout=1.0)
        try:
            self.relay.close()
        except Exception:
            log.exception("door: releasing the relay pin failed")

    def _lock_now(self) -> None:
        """Drive the relay locked; the deadline is cleared only once that has worked, so a
        failed lock is retried by the timer instead of forgotten."""
        if self.relay.closed:
            self._deadline = None
            return
        was_unlocked = bool(self.relay.is_active)
        try:
            self._drive_off()
        except RelayFault:
            self._deadline = self.clock() + RELOCK_INTERVAL_S
            raise
        self._deadline = None
        if was_unlocked:
            self._changed(LOCKED)

    def _drive_off(self) -> None:
        """relay.off(), tried up to WRITE_ATTEMPTS times; RelayFault (and `failed`) if no
        attempt worked."""
        first: Exception | None = None
        for attempt in range(WRITE_ATTEMPTS):
            try:
                self.relay.off()
            except Exception as exc:
                first = first or exc
                log.error("door: locking the relay failed (attempt %d of %d): %r",
                          attempt + 1, WRITE_ATTEMPTS, exc)
                time.sleep(RETRY_PAUSE_S)
                continue
            if first is not None:
                self._report(f"lock failed, then worked on retry {attempt}: {first!r}",
                             recovered=True)
            return
        detail = f"lock failed {WRITE_ATTEMPTS} times: {first!r}"
        if self.failed is None:
            self.failed = detail
            self._report(detail, recovered=False)
        raise RelayFault(detail)

    def _report(self, detail: str, recovered: bool) -> None:
        try:
            self.on_fault(detail, recovered)
        except Exception:  # reporting must never stop the locking
            log.exception("door: reporting a relay fault failed")

    def _changed(self, state: str) -> None:
        try:
            self.on_change(state)
        except Exception:  # a journal failure must never leave the relay in a wrong state
            log.exception("door: recording relay change %s failed", state)

    def poll(self) -> None:
        """Lock now if the pulse is over by `clock`. The timer thread does this by itself; a
        test that moved a fake clock calls it to have it done before it looks."""
        with self._cond:
            self._lock_if_due()
            self._cond.notify()

    def _lock_if_due(self) -> float | None:
        """Lock if the deadline has passed; the seconds still to wait otherwise (None: no
        deadline)."""
        if self._deadline is None or self._closed:
            return None
        remaining = self._deadline - self.clock()
        if remaining > 0:
            return remaining
        try:
            self._lock_now()
        except Exception:  # keep the timer alive: it tries again (deadline kept)
            log.exception("door: locking the relay failed")
        return None if self._deadline is None else 0.0

    def _run(self) -> None:
        with self._cond:
            while not self._closed:
                if self._deadline is None:
                    self._cond.wait()
                    continue
                remaining = self._lock_if_due()
                if remaining:
                    self._cond.wait(remaining)
