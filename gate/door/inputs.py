"""Door inputs: the door contact, the request-to-exit button and the staff override button,
each debounced the same way whatever the pin factory."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gpiozero import Button, DigitalInputDevice
from gpiozero.exc import DeviceClosed
from gpiozero.pins import Factory

from ..contracts import Source

log = logging.getLogger(__name__)


class Settling:
    """Mixin for gpiozero input devices: an edge counts only once the line has held its new
    level for `settle_s` seconds, then gpiozero's own events fire (`when_activated`,
    `when_pressed`, `wait_for_active`...).

    Done here rather than with gpiozero's `bounce_time` because that means different things
    per pin factory (lgpio: a stability filter; rpigpio: edges ignored after an edge, which
    can drop the final level; mock pins: ignored), and a door contact that chatters once must
    not raise a forced-open alarm. `settle_s = 0` passes edges straight through.
    """

    _settle_s: float | None = None  # unset while gpiozero's __init__ reads the first level

    def _init_settling(self, settle_s: float) -> None:
        self._settle_lock = threading.Lock()
        self._settle_timer: threading.Timer | None = None
        self._settle_s = settle_s

    def _fire_events(self, ticks: Any, new_active: bool) -> None:
        if not self._settle_s:
            super()._fire_events(ticks, new_active)  # type: ignore[misc]
            return
        with self._settle_lock:
            if self._settle_timer is not None:
                self._settle_timer.cancel()
            self._settle_timer = threading.Timer(self._settle_s, self._settled)
            self._settle_timer.daemon = True
            self._settle_timer.start()

    def _settled(self) -> None:
        try:
            level = bool(self.is_active)  # type: ignore[attr-defined]
            ticks = self.pin_factory.ticks()  # type: ignore[attr-defined]
        except DeviceClosed:
            return
        super()._fire_events(ticks, level)  # type: ignore[misc]

    def _stop_settling(self) -> None:
        if self._settle_s is None:
            return
        with self._settle_lock:
            if self._settle_timer is not None:
                self._settle_timer.cancel()
                self._settle_timer = None


class DoorContact(Settling, DigitalInputDevice):
    """The magnetic door contact (reed switch), wired between the GPIO pin and GND; the pin's
    internal pull-up reads HIGH while the switch is open.

    Normally closed (the default and the secure choice): the switch is closed while the door
    is shut, so the door opening, a cut wire or a missing magnet all read as "open".
    Normally open: the switch closes when the door opens.

    `is_active` is gpiozero's view (the switch closed); use `is_open`, `when_opened`,
    `when_closed` and `wait_for_open`. Events fire once the level has settled.
    """

    def __init__(self, pin: int | str, *, normally_closed: bool = True, settle_s: float = 0.05,
                 pin_factory: Factory | None = None) -> None:
        self.normally_closed = normally_closed
        super().__init__(pin, pull_up=True, bounce_time=None, pin_factory=pin_factory)
        self._init_settling(settle_s)

    @property
    def is_open(self) -> bool:
        """The door is open now (the line as it reads at this moment, not debounced)."""
        return bool(self.is_active) != self.normally_closed

    @property
    def when_opened(self) -> Callable[[], None] | None:
        return self.when_deactivated if self.normally_closed else self.when_activated

    @when_opened.setter
    def when_opened(self, func: Callable[[], None] | None) -> None:
        if self.normally_closed:
            self.when_deactivated = func
        else:
            self.when_activated = func

    @property
    def when_closed(self) -> Callable[[], None] | None:
        return self.when_activated if self.normally_closed else self.when_deactivated

    @when_closed.setter
    def when_closed(self, func: Callable[[], None] | None) -> None:
        if self.normally_closed:
            self.when_activated = func
        else:
            self.when_deactivated = func

    def wait_for_open(self, timeout: float | None = None) -> bool:
        return bool(self.wait_for_inactive(timeout) if self.normally_closed
                    else self.wait_for_active(timeout))

    def wait_for_close(self, timeout: float | None = None) -> bool:
        return bool(self.wait_for_active(timeout) if self.normally_closed
                    else self.wait_for_inactive(timeout))

    def close(self) -> None:
        self._stop_settling()
        super().close()


class PushButton(Settling, Button):
    """A momentary push button (normally open) between the GPIO pin and GND, internal
    pull-up; `when_pressed` fires once per settled press."""

    def __init__(self, pin: int | str, *, settle_s: float = 0.05,
                 pin_factory: Factory | None = None) -> None:
        super().__init__(pin, pull_up=True, bounce_time=None, pin_factory=pin_factory)
        self._init_settling(settle_s)

    def close(self) -> None:
        self._stop_settling()
        super().close()


class ExitButton(PushButton):
    """The request-to-exit button inside the door. Keep a mechanical or hard-wired emergency
    release as well: this button only asks the gate to open."""


class StaffButton(PushButton):
    """The staff override button at the desk: pressed within the staff window after a
    `staff` verdict, it grants that visitor."""


@dataclass(frozen=True)
class StaffCheck:
    """A `staff` verdict waiting for a person to decide: what the journal needs, no code."""

    code_sha256: str
    label: str
    credential_id: str | None
    reason: str
    source: Source
    open_s: float


class StaffWindow:
    """Holds the latest `staff` verdict for `window_s`; the staff button takes it, once.

    Every decision goes through `supersede`: a `staff` one opens the window for its own
    check, any other (grant, deny, an exit-button release) closes it, so the button only ever
    confirms the latest verdict, never an older visitor's after someone else was denied.
    """

    def __init__(self, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.window_s = window_s
        self._clock = clock
        self._lock = threading.Lock()
        self._pending: tuple[float, StaffCheck] | None = None

    def supersede(self, check: StaffCheck | None) -> None:
        """A later decision: wait for `check` now (a staff verdict), or for nothing (None)."""
        with self._lock:
            self._pending = None if check is None else (self._clock() + self.window_s, check)

    def open(self, check: StaffCheck) -> None:
        self.supersede(check)

    def cancel(self) -> None:
        self.supersede(None)

    def take(self) -> StaffCheck | None:
        """The waiting check if its window is still open (and forget it), else None."""
        with self._lock:
            pending, self._pending = self._pending, None
        if pending is None or self._clock() > pending[0]:
            return None
        return pending[1]
