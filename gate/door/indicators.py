"""Indicator LEDs and buzzer: what the visitor sees and hears after a decision, and what the
technician sees when the server is unreachable or something failed. All optional."""

from __future__ import annotations

import logging
import threading

from gpiozero import LED, Buzzer, DigitalOutputDevice
from gpiozero.pins import Factory

from ..config import IndicatorsSection, Pattern, Steady

log = logging.getLogger(__name__)


class Indicator:
    """One LED or buzzer: a base (off, on, or a steady blink for a state) and one-shot
    patterns played over it; when a one-shot ends the base comes back."""

    def __init__(self, device: DigitalOutputDevice) -> None:
        self.device = device
        self._lock = threading.Lock()
        self._base: Steady | bool = False  # False: off, True: on, (on_s, off_s): blinking
        self._generation = 0  # bumped by each one-shot; a stale timer must not restore
        self._timer: threading.Timer | None = None

    def flash(self, pattern: Pattern) -> None:
        """Play [on_s, off_s, count] once; count 0 (or on_s 0) plays nothing."""
        on_s, off_s, count = pattern
        if count <= 0 or on_s <= 0:
            return
        with self._lock:
            if self.device.closed:
                return
            self._generation += 1
            if self._timer is not None:
                self._timer.cancel()
            self.device.blink(on_time=on_s, off_time=off_s, n=count, background=True)
            self._timer = threading.Timer(count * (on_s + off_s), self._restore,
                                          args=(self._generation,))
            self._timer.daemon = True
            self._timer.start()

    def set_base(self, base: Steady | bool) -> None:
        """What the device shows when no one-shot is playing."""
        with self._lock:
            changed, self._base = base != self._base, base
            if changed and self._timer is None:
                self._show_base()

    def _restore(self, generation: int) -> None:
        with self._lock:
            if generation != self._generation or self.device.closed:
                return
            self._timer = None
            self._show_base()

    def _show_base(self) -> None:
        if self.device.closed:  # the door locks at shutdown after the indicators closed
            return
        base = self._base
        if base is True:
            self.device.on()
        elif base is False or base[0] <= 0:
            self.device.off()
        else:
            self.device.blink(on_time=base[0], off_time=base[1], n=None, background=True)

    def close(self) -> None:
        with self._lock:
            self._generation += 1
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        self.device.close()


class Indicators:
    """Green LED, red LED, status LED and buzzer, each optional, with a distinct pattern for
    granted, denied, staff check, offline (server unreachable) and fault.

    Wiring: each LED (with its resistor) or buzzer module between its GPIO pin and GND; set
    `[indicators] active_high = false` for modules that switch on a LOW line. Without a
    status LED, offline and fault blink on the red LED, between decisions.
    """

    def __init__(self, granted_pin: int | None = None, denied_pin: int | None = None,
                 buzzer_pin: int | None = None, status_pin: int | None = None, *,
                 patterns: IndicatorsSection | None = None, active_high: bool = True,
                 pin_factory: Factory | None = None) -> None:
        self.patterns = patterns or IndicatorsSection()
        self._outputs: list[Indicator] = []
        try:
            self.granted = self._output(LED, granted_pin, active_high, pin_factory)
            self.denied = self._output(LED, denied_pin, active_high, pin_factory)
            self.status = self._output(LED, status_pin, active_high, pin_factory)
            self.buzzer = self._output(Buzzer, buzzer_pin, active_high, pin_factory)
        except BaseException:
            self.close()
            raise
        self._lock = threading.Lock()
        self.offline = False
        self.fault = False
        self.lockdown = False
        self.full = False
        self._door_released = False

    def _output(self, kind: type, pin: int | None, active_high: bool,
                pin_factory: Factory | None) -> Indicator | None:
        if pin is None:
            return None
        output = Indicator(kind(pin, active_high=active_high, initial_value=False,
                                pin_factory=pin_factory))
        self._outputs.append(output)
        return output

    # -- decisions ---------------------------------------------------------------------------

    def show(self, verdict: str, open_s: float | None = None) -> None:
        """The one-shot patterns for a decision: grant, deny or staff."""
        p = self.patterns
        led, buzz = {"grant": (p.granted_led, p.granted_buzzer),
                     "staff": (p.staff_led, p.staff_buzzer)}.get(
                         verdict, (p.denied_led, p.denied_buzzer))
        target = self.granted if verdict == "grant" else self.denied
        if target is not None and not (verdict == "grant" and self._follows_door()):
            target.flash(led)
        if self.buzzer is not None:
            self.buzzer.flash(buzz)

    def door_changed(self, released: bool) -> None:
        """The relay changed: with granted_led on_s 0 the green LED shows it."""
        with self._lock:
            self._door_released = released
            if self.granted is not None and self._follows_door():
                self.granted.set_base(released)

    def _follows_door(self) -> bool:
        return self.patterns.granted_led[0] <= 0 and self.patterns.granted_led[2] > 0

    # -- states ------------------------------------------------------------------------------

    def set_offline(self, offline: bool) -> None:
        self._set_state("offline", offline, self.patterns.offline_buzzer)

    def set_fault(self, fault: bool) -> None:
        self._set_state("fault", fault, self.patterns.fault_buzzer)

    def set_lockdown(self, on: bool) -> None:
        self._set_state("lockdown", on, self.patterns.lockdown_buzzer)

    def set_full(self, on: bool) -> None:
        self._set_state("full", on, self.patterns.full_buzzer)

    def _set_state(self, name: str, on: bool, beep: Pattern) -> None:
        """Enter or leave a state (`offline`, `fault`): the lamp shows it while it lasts and
        the buzzer beeps once on entering it."""
        with self._lock:
            if on == getattr(self, name):
                return
            setattr(self, name, on)
            self._show_state()
        if on and self.buzzer is not None:
            self.buzzer.flash(beep)

    def _show_state(self) -> None:
        lamp = self.status or self.denied
        if lamp is None:
            return
        p = self.patterns
        lamp.set_base(p.fault_led if self.fault else p.lockdown_led if self.lockdown
                      else p.offline_led if self.offline else p.full_led if self.full
                      else False)

    def reconfigure(self, patterns: IndicatorsSection) -> None:
        """New patterns (SIGHUP); pins and levels change only with a restart."""
        with self._lock:
            self.patterns = patterns
            self._show_state()
            if self.granted is not None:
                self.granted.set_base(self._door_released and self._follows_door())

    def close(self) -> None:
        for output in self._outputs:
            try:
                output.close()
            except Exception:
                log.exception("indicators: closing a device failed")
