"""The door relay and its pulse, on gpiozero's MockFactory pins: locked at construction, a
release unlocks then locks after open_s, a release while open extends, close() locks.

Timing is checked only as order and as "not before the deadline" (with generous waits),
never as how fast anything runs."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory

from gate.door.indicators import Indicators
from gate.door.relay import LOCKED, UNLOCKED, Door, Relay

WAIT = 5.0  # how long a test waits for something that should happen well before


class Changes:
    """on_change recorder: the states in order, when each came, and events to wait on."""

    def __init__(self, fail: bool = False, clock: Any = time.monotonic) -> None:
        self.states: list[str] = []
        self.times: list[float] = []
        self.fail = fail
        self.clock = clock
        self._cond = threading.Condition()

    def __call__(self, state: str) -> None:
        with self._cond:
            self.states.append(state)
            self.times.append(self.clock())
            self._cond.notify_all()
        if self.fail:
            raise RuntimeError("journal is on fire")

    def wait_for(self, count: int, timeout: float = WAIT) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: len(self.states) >= count, timeout)


def levels(pin: Any) -> list[bool]:
    return [s.state for s in pin.states]


class FakeClock:
    """Monotonic seconds that move only when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_door(pins: MockFactory, active_high: bool = True, pin: int = 17,
              on_change: Any = None, clock: Any = time.monotonic) -> tuple[Door, Any]:
    relay = Relay(pin, active_high=active_high, pin_factory=pins)
    return Door(relay, on_change=on_change, clock=clock), pins.pin(pin)


def advance(door: Door, clock: FakeClock, seconds: float) -> None:
    clock.now += seconds
    door.poll()


@pytest.mark.parametrize("active_high", [True, False])
def test_door_relay_is_locked_from_the_moment_it_is_built(pins: MockFactory,
                                                          active_high: bool) -> None:
    changes = Changes()
    door, pin = make_door(pins, active_high, on_change=changes)
    locked_level = not active_high  # active-low boards are released by a LOW line
    try:
        assert pin.function == "output"
        assert pin.state is locked_level
        assert door.relay.value == 0 and not door.is_unlocked
        # the line was never driven to the released level: after the pin's first entry (the
        # floating input it was) every level is the locked one
        assert all(level is locked_level for level in levels(pin)[1:])
        assert len(pin.states) == (1 if active_high else 2)
        assert changes.states == [], "building the door is not a relay change"
    finally:
        door.close()


@pytest.mark.parametrize("active_high", [True, False])
def test_relay_drives_locked_when_claimed_even_if_the_line_was_left_released(
        pins: MockFactory, active_high: bool) -> None:
    pin = pins.pin(17)
    if active_high:  # the line sits at the released level, e.g. after a crashed process
        pin.drive_high()
    else:
        pin.drive_low()
    relay = Relay(17, active_high=active_high, pin_factory=pins)
    try:
        assert pin.function == "output" and pin.state is (not active_high)
        assert relay.value == 0
    finally:
        relay.close()


def test_door_locks_a_relay_that_was_left_on(pins: MockFactory) -> None:
    relay = Relay(17, pin_factory=pins)
    relay.on()
    door = Door(relay)
    try:
        assert pins.pin(17).state is False and not door.is_unlocked
    finally:
        door.close()


@pytest.mark.parametrize("active_high", [True, False])
def test_door_release_unlocks_then_locks_after_open_s(pins: MockFactory,
                                                      active_high: bool) -> None:
    clock = FakeClock()
    changes = Changes(clock=clock)
    door, pin = make_door(pins, active_high, on_change=changes, clock=clock)
    locked_level, released_level = (not active_high), active_high
    pin.clear_states()
    try:
        door.release(0.2)
        assert door.is_unlocked and pin.state is released_level
        assert changes.states == [UNLOCKED]
        advance(door, clock, 0.199)
        assert door.is_unlocked, "locked before open_s"
        advance(door, clock, 0.002)
        assert changes.states == [UNLOCKED, LOCKED]
        assert pin.state is locked_level and not door.is_unlocked
        pin.assert_states([locked_level, released_level, locked_level])
        assert len(pin.states) == 3
    finally:
        door.close()


def test_door_release_while_open_extends_the_pulse(pins: MockFactory) -> None:
    clock = FakeClock()
    changes = Changes(clock=clock)
    door, pin = make_door(pins, on_change=changes, clock=clock)
    pin.clear_states()
    try:
        door.release(0.3)
        advance(door, clock, 0.1)
        door.release(0.5)  # a second grant while the door is open: locks at 0.6, not 0.3
        advance(door, clock, 0.499)
        assert changes.states == [UNLOCKED], "no relock in between"
        advance(door, clock, 0.002)
        assert changes.states == [UNLOCKED, LOCKED]
        pin.assert_states([False, True, False])
        assert len(pin.states) == 3
    finally:
        door.close()


def test_door_shorter_release_while_open_does_not_cut_the_pulse(pins: MockFactory) -> None:
    clock = FakeClock()
    changes = Changes(clock=clock)
    door, _pin = make_door(pins, on_change=changes, clock=clock)
    try:
        door.release(0.4)
        door.release(0.01)
        advance(door, clock, 0.399)
        assert changes.states == [UNLOCKED]
        advance(door, clock, 0.002)
        assert changes.states == [UNLOCKED, LOCKED]
    finally:
        door.close()


def test_door_release_after_the_pulse_starts_a_new_one(pins: MockFactory) -> None:
    changes = Changes()
    door, pin = make_door(pins, on_change=changes)
    pin.clear_states()
    try:
        door.release(0.05)
        assert changes.wait_for(2)
        door.release(0.05)
        assert changes.wait_for(4)
        assert changes.states == [UNLOCKED, LOCKED, UNLOCKED, LOCKED]
        pin.assert_states([False, True, False, True, False])
        assert len(pin.states) == 5
    finally:
        door.close()


def test_door_lock_ends_the_pulse_now(pins: MockFactory) -> None:
    changes = Changes()
    door, pin = make_door(pins, on_change=changes)
    try:
        door.release(30)
        door.lock()
        assert not door.is_unlocked and pin.state is False
        assert changes.states == [UNLOCKED, LOCKED]
        door.lock()  # already locked: no second report
        assert changes.states == [UNLOCKED, LOCKED]
    finally:
        door.close()


@pytest.mark.parametrize("active_high", [True, False])
def test_door_close_mid_pulse_locks_and_reports_it(pins: MockFactory, active_high: bool) -> None:
    changes = Changes()
    door, pin = make_door(pins, active_high, on_change=changes)
    locked_level = not active_high
    pin.clear_states()
    door.release(30)
    door.close()
    assert changes.states == [UNLOCKED, LOCKED]
    assert door.relay.closed
    # the last level the relay drove before letting go of the pin was "locked"
    assert levels(pin)[:3] == [locked_level, not locked_level, locked_level]
    assert not door._timer.is_alive()
    door.release(5)  # after close: ignored, never unlocks
    door.close()     # and closing twice is fine
    assert changes.states == [UNLOCKED, LOCKED]
    assert levels(pin)[:3] == [locked_level, not locked_level, locked_level]
    assert len([lv for lv in levels(pin)[1:] if lv is not locked_level]) == 1


def test_door_on_change_that_raises_does_not_stop_the_locking(pins: MockFactory) -> None:
    changes = Changes(fail=True)
    door, pin = make_door(pins, on_change=changes)
    try:
        door.release(0.05)
        assert door.is_unlocked, "a failing journal must not keep the door shut either"
        assert changes.wait_for(2), "the timer died when on_change raised"
        deadline = time.monotonic() + WAIT
        while door.is_unlocked and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not door.is_unlocked and pin.state is False
        door.release(0.05)  # the timer thread is still alive and locks again
        assert changes.wait_for(4)
        assert changes.states == [UNLOCKED, LOCKED, UNLOCKED, LOCKED]
    finally:
        door.close()
    assert pin.state is False or door.relay.closed


# -- indicators -----------------------------------------------------------------------------

def wait_for_levels(pin: Any, count: int, timeout: float = WAIT) -> list[bool]:
    deadline = time.monotonic() + timeout
    while len(pin.states) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    return levels(pin)


def test_indicators_deny_lights_red_and_beeps_twice(pins: MockFactory) -> None:
    ind = Indicators(granted_pin=22, denied_pin=23, buzzer_pin=24, pin_factory=pins)
    try:
        ind.show("deny", 4.0)
        buzzer = wait_for_levels(pins.pin(24), 5)
        assert buzzer[:5] == [False, True, False, True, False]
        assert True in levels(pins.pin(23)), "the red LED never lit"
        assert levels(pins.pin(22)) == [False], "a denial must not light the green LED"
    finally:
        ind.close()


def test_indicators_staff_blinks_red_and_beeps(pins: MockFactory) -> None:
    ind = Indicators(granted_pin=22, denied_pin=23, buzzer_pin=24, pin_factory=pins)
    try:
        ind.show("staff", 4.0)
        red = wait_for_levels(pins.pin(23), 4)
        assert red[:4] == [False, True, False, True], "staff: the red LED blinks"
        assert True in wait_for_levels(pins.pin(24), 2)
        assert levels(pins.pin(22)) == [False]
    finally:
        ind.close()


def test_indicators_grant_beeps_once_and_never_lights_red(pins: MockFactory) -> None:
    ind = Indicators(granted_pin=22, denied_pin=23, buzzer_pin=24, pin_factory=pins)
    try:
        ind.show("grant", 0.2)
        assert wait_for_levels(pins.pin(24), 3)[:3] == [False, True, False]
        assert levels(pins.pin(23)) == [False]
    finally:
        ind.close()


def test_indicators_without_pins_do_nothing_and_do_not_crash(pins: MockFactory) -> None:
    ind = Indicators(pin_factory=pins)
    for verdict in ("grant", "deny", "staff", "something-new"):
        ind.show(verdict, 1.0)
    ind.close()
    assert pins.pins == {}  # no pin was ever claimed


def test_indicators_close_releases_their_pins(pins: MockFactory) -> None:
    ind = Indicators(granted_pin=22, denied_pin=23, buzzer_pin=24, pin_factory=pins)
    ind.show("staff", 1.0)
    assert sum(map(len, pins._reservations.values())) == 3
    ind.close()
    assert sum(map(len, pins._reservations.values())) == 0
    # the pins are free again: claiming them does not raise GPIOPinInUse
    again = Indicators(granted_pin=22, denied_pin=23, buzzer_pin=24, pin_factory=pins)
    again.close()
