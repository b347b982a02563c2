"""The door's inputs as the daemon uses them: the contact and its alarm monitor, the exit
button, and the staff button with its window. All optional; all built after the relay."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

from gpiozero.pins import Factory

from ..config import InputsSection
from ..contracts import Reason, Source
from ..journal import Journal
from .alarms import DoorMonitor
from .inputs import DoorContact, ExitButton, StaffButton, StaffCheck, StaffWindow
from .relay import Door

log = logging.getLogger(__name__)

# on_grant(reason, source, open_s, check): a person at a button asked for the door.
ButtonGrant = Callable[[Reason, Source, float, StaffCheck | None], None]


class DoorIO:
    """Builds the configured inputs into `parts` (closed with the gate) and routes them:
    contact -> DoorMonitor alarms; exit button -> a grant for [door] open_s; staff button ->
    a grant for the code that last answered `staff`, within `staff_window_s`."""

    def __init__(self, inputs: InputsSection, door: Door, journal: Journal,
                 parts: contextlib.ExitStack, *, open_s: float, held_open_s: float,
                 grace_s: float, pin_factory: Factory | None = None) -> None:
        ins = inputs
        self.open_s = open_s
        # Set by the gate once its decision path exists (gpiozero's `when_pressed` style);
        # a press before that is logged and ignored, the door staying locked.
        self.when_grant: ButtonGrant | None = None
        self.monitor: DoorMonitor | None = None
        self.staff_window: StaffWindow | None = None
        if ins.door_contact_pin is not None:
            contact = DoorContact(ins.door_contact_pin,
                                  normally_closed=ins.door_contact_normally_closed,
                                  settle_s=ins.bounce_s, pin_factory=pin_factory)
            parts.callback(contact.close)
            self.monitor = DoorMonitor(contact, journal, is_unlocked=lambda: door.is_unlocked,
                                       held_open_s=held_open_s, grace_s=grace_s)
            parts.callback(self.monitor.close)
        if ins.exit_button_pin is not None:
            exit_button = ExitButton(ins.exit_button_pin, settle_s=ins.bounce_s,
                                     pin_factory=pin_factory)
            parts.callback(exit_button.close)
            exit_button.when_pressed = self._exit_pressed
        if ins.staff_button_pin is not None:
            self.staff_window = StaffWindow(ins.staff_window_s)
            staff_button = StaffButton(ins.staff_button_pin, settle_s=ins.bounce_s,
                                       pin_factory=pin_factory)
            parts.callback(staff_button.close)
            staff_button.when_pressed = self._staff_pressed

    def relay_changed(self, state: str) -> None:
        """Tell the monitor first, so an opening at this very moment sees the relay as it is."""
        if self.monitor is not None:
            self.monitor.relay_changed(state)

    def decided(self, staff: StaffCheck | None) -> None:
        """Every decision calls this once: a `staff` verdict (its check) opens the staff
        window for that code; any other decision (None) closes a window still open."""
        if self.staff_window is not None:
            self.staff_window.supersede(staff)

    def is_alive(self) -> bool:
        return self.monitor is None or self.monitor.is_alive()

    def snapshot(self) -> dict[str, Any]:
        return self.monitor.snapshot() if self.monitor is not None else {"contact": None,
                                                                          "alarms": []}

    def reconfigure(self, *, held_open_s: float, forced_open_grace_s: float,
                    staff_window_s: float, open_s: float) -> None:
        """SIGHUP: new alarm times, staff window and pulse length (pins never change here)."""
        if self.monitor is not None:
            self.monitor.held_open_s = held_open_s
            self.monitor.grace_s = forced_open_grace_s
        if self.staff_window is not None:
            self.staff_window.window_s = staff_window_s
        self.open_s = open_s

    def _exit_pressed(self) -> None:
        self.decided(None)  # the exit release is a later decision too
        self._grant("exit_request", "exit_button", self.open_s, None)

    def _staff_pressed(self) -> None:
        assert self.staff_window is not None
        check = self.staff_window.take()
        if check is None:
            log.info("staff button: no staff check is waiting")
            return
        self._grant("staff_override", "staff_button", check.open_s, check)

    def _grant(self, reason: Reason, source: Source, open_s: float, check: StaffCheck | None) -> None:
        if self.when_grant is None:
            log.warning("%s pressed before the gate was running; ignored", source)
            return
        self.when_grant(reason, source, open_s, check)
