"""The test suite's own guards: a gpiozero device built without `pin_factory=` fails loudly, in
the test process and in the subprocesses it starts."""

from __future__ import annotations

import subprocess
import sys

import pytest
from gpiozero import LED
from gpiozero.pins.mock import MockFactory


def test_guards_device_without_pin_factory_fails_loudly() -> None:
    with pytest.raises(AssertionError, match="built without pin_factory="):
        LED(5)


def test_guards_device_with_an_explicit_mock_factory_is_fine(pins: MockFactory) -> None:
    led = LED(5, pin_factory=pins)
    led.on()
    assert pins.pin(5).state == 1
    led.close()


def test_guards_subprocess_device_without_pin_factory_fails_naming_the_rule() -> None:
    proc = subprocess.run([sys.executable, "-c", "from gpiozero import LED; LED(5)"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "tests-pass-pin_factory-explicitly" in proc.stderr
