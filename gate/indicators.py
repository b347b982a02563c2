"""Indicator LEDs and buzzer: what the visitor sees and hears after a decision. All optional."""

from __future__ import annotations

from gpiozero import LED, Buzzer
from gpiozero.pins import Factory


class Indicators:
    """Green LED for a grant, red LED and two beeps for a denial, red blinking for staff."""

    def __init__(self, granted_pin: int | None = None, denied_pin: int | None = None,
                 buzzer_pin: int | None = None, pin_factory: Factory | None = None) -> None:
        self.granted = LED(granted_pin, pin_factory=pin_factory) if granted_pin is not None else None
        self.denied = LED(denied_pin, pin_factory=pin_factory) if denied_pin is not None else None
        self.buzzer = (Buzzer(buzzer_pin, pin_factory=pin_factory)
                       if buzzer_pin is not None else None)

    def show(self, verdict: str, open_s: float) -> None:
        if verdict == "grant":
            if self.granted:
                self.granted.blink(on_time=open_s, off_time=0, n=1)
            if self.buzzer:
                self.buzzer.blink(on_time=0.1, off_time=0, n=1)
        elif verdict == "staff":
            if self.denied:
                self.denied.blink(on_time=0.25, off_time=0.25, n=6)
            if self.buzzer:
                self.buzzer.blink(on_time=0.1, off_time=0.1, n=3)
        else:
            if self.denied:
                self.denied.blink(on_time=1.0, off_time=0, n=1)
            if self.buzzer:
                self.buzzer.blink(on_time=0.15, off_time=0.1, n=2)

    def close(self) -> None:
        for dev in (self.granted, self.denied, self.buzzer):
            if dev is not None:
                dev.close()
