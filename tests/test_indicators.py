"""Indicator patterns on mock pins: each of granted, denied, staff, offline and fault is
distinct, configurable and optional; the state patterns come back after a one-shot."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory

from gate.config import IndicatorsSection, load_config
from gate.door.indicators import Indicators
from gate.wiring import build_indicators
from tests.support.gatehelpers import running_gate, setup_config, states, wait_states, wait_until

GREEN, RED, STATUS, BUZZER = 22, 23, 24, 25
SLACK = 0.5  # scheduling on a busy CI machine: durations are checked with generous bounds


def durations(pin: Any) -> list[float]:
    """How long each state lasted: the time stamps are time since the previous change."""
    return [s.timestamp for s in pin.states[1:]]


def make(pins: Any, status: bool = True, **patterns: Any) -> Indicators:
    return Indicators(GREEN, RED, BUZZER, STATUS if status else None,
                      patterns=IndicatorsSection(**patterns), pin_factory=pins)


def test_indicators_grant_beeps_once_and_green_follows_the_door(pins) -> None:
    ind = make(pins, granted_buzzer=(0.1, 0.0, 1))
    green, buzzer = pins.pin(GREEN), pins.pin(BUZZER)
    ind.door_changed(True)
    ind.show("grant", 4.0)
    assert green.state  # lit while the door is released
    wait_states(buzzer, 3)
    ind.door_changed(False)
    assert not green.state
    assert states(buzzer) == [False, True, False]
    assert 0.08 <= durations(buzzer)[1] <= 0.1 + SLACK
    assert states(pins.pin(RED)) == [False]
    ind.close()


def test_indicators_grant_led_pattern_instead_of_following_the_door(pins) -> None:
    ind = make(pins, granted_led=(0.2, 0.0, 1))
    green = pins.pin(GREEN)
    ind.door_changed(True)
    assert states(green) == [False]  # not following the door
    ind.show("grant", 4.0)
    wait_states(green, 3)
    assert states(green) == [False, True, False]
    assert 0.18 <= durations(green)[1] <= 0.2 + SLACK
    ind.close()


def test_indicators_deny_lights_red_and_beeps_twice(pins) -> None:
    ind = make(pins, denied_led=(0.3, 0.0, 1), denied_buzzer=(0.05, 0.05, 2))
    red, buzzer = pins.pin(RED), pins.pin(BUZZER)
    ind.show("deny")
    wait_states(red, 3)
    wait_states(buzzer, 5)
    assert states(red) == [False, True, False]
    assert 0.28 <= durations(red)[1] <= 0.3 + SLACK
    assert states(buzzer) == [False, True, False, True, False]
    assert states(pins.pin(GREEN)) == [False]
    ind.close()


def test_indicators_staff_blinks_red_and_beeps_three_times(pins) -> None:
    ind = make(pins, staff_led=(0.05, 0.05, 3), staff_buzzer=(0.05, 0.05, 3))
    red, buzzer = pins.pin(RED), pins.pin(BUZZER)
    ind.show("staff")
    wait_states(red, 7)
    wait_states(buzzer, 7)
    assert states(red) == [False, True, False, True, False, True, False]
    assert states(buzzer) == [False, True, False, True, False, True, False]
    ind.close()


def test_indicators_offline_blinks_the_status_led_until_back_online(pins) -> None:
    ind = make(pins, offline_led=(0.05, 0.05), offline_buzzer=(0.05, 0.0, 1))
    status, buzzer = pins.pin(STATUS), pins.pin(BUZZER)
    ind.set_offline(True)
    wait_states(status, 6)  # it keeps blinking: more than any one-shot here
    wait_states(buzzer, 3)
    ind.set_offline(False)
    wait_until(lambda: not status.state, what="status LED off")
    n = len(status.states)
    time.sleep(0.3)  # several blink periods: it must stay off (an absence takes a wait)
    assert len(status.states) == n
    assert states(buzzer) == [False, True, False]  # once, when it went offline
    ind.close()


def test_indicators_fault_overrides_offline_and_offline_returns_after(pins) -> None:
    ind = make(pins, offline_led=(0.6, 0.6), fault_led=(0.05, 0.05),
               fault_buzzer=(0.05, 0.0, 1))
    status = pins.pin(STATUS)
    ind.set_offline(True)
    ind.set_fault(True)
    status.clear_states()
    wait_states(status, 5)
    assert max(durations(status)[:4]) < 0.5  # the fast fault blink, not the slow offline one
    ind.set_fault(False)
    status.clear_states()
    wait_states(status, 3)
    assert min(durations(status)[1:3]) >= 0.55  # the slow offline blink again
    ind.close()


def test_indicators_without_status_led_fault_blinks_red_and_resumes_after_a_denial(pins) -> None:
    ind = make(pins, status=False, fault_led=(0.05, 0.05), fault_buzzer=(0.0, 0.0, 0),
               denied_led=(0.4, 0.0, 1), denied_buzzer=(0.0, 0.0, 0))
    red = pins.pin(RED)
    ind.set_fault(True)
    wait_states(red, 4)
    ind.show("deny")
    red.clear_states()
    wait_states(red, 4)  # the 0.4 s denial, then the fault blink again
    assert max(durations(red)) >= 0.35
    assert states(pins.pin(BUZZER)) == [False]  # count 0: that buzzer pattern is off
    ind.close()


def test_indicators_count_zero_turns_a_pattern_off(pins) -> None:
    ind = make(pins, denied_led=(1.0, 0.0, 0), denied_buzzer=(0.1, 0.1, 0),
               staff_led=(0.25, 0.25, 0), staff_buzzer=(0.1, 0.1, 0))
    ind.show("deny")
    ind.show("staff")
    assert states(pins.pin(RED)) == [False] and states(pins.pin(BUZZER)) == [False]
    ind.close()


def test_indicators_every_device_is_optional(pins) -> None:
    ind = Indicators(pin_factory=pins)
    ind.show("grant", 1.0)
    ind.show("deny")
    ind.show("staff")
    ind.set_offline(True)
    ind.set_fault(True)
    ind.door_changed(True)
    ind.close()
    assert pins.pins == {}


def test_indicators_default_patterns_are_distinct() -> None:
    p = IndicatorsSection()
    one_shots = {"granted": ("green", p.granted_led, p.granted_buzzer),
                 "denied": ("red", p.denied_led, p.denied_buzzer),
                 "staff": ("red", p.staff_led, p.staff_buzzer)}
    assert len(set(one_shots.values())) == 3
    assert p.offline_led != p.fault_led and p.offline_led[0] > 0 and p.fault_led[0] > 0
    assert p.fault_buzzer[2] > 0  # a fault is heard, once


def test_indicators_active_low_modules_are_off_high(pins) -> None:
    ind = Indicators(GREEN, RED, BUZZER, active_high=False, pin_factory=pins,
                     patterns=IndicatorsSection(denied_led=(0.1, 0.0, 1)))
    red = pins.pin(RED)
    assert red.state is True  # off
    ind.show("deny")
    wait_states(red, 4)
    assert states(red) == [False, True, False, True]  # unclaimed, off, on, off
    ind.close()


# -- in the daemon ------------------------------------------------------------------------------

def test_indicators_config_keys_and_old_door_keys_both_work(tmp_path: Path) -> None:
    config = setup_config(tmp_path, door={"granted_led_pin": GREEN, "buzzer_pin": BUZZER},
                          indicators={"denied_led_pin": RED, "status_led_pin": STATUS})
    cfg = load_config(config)
    factory = MockFactory()
    ind = build_indicators(cfg, factory)
    assert (ind.granted.device.pin.info.name, ind.denied.device.pin.info.name,
            ind.status.device.pin.info.name, ind.buzzer.device.pin.info.name) == (
        f"GPIO{GREEN}", f"GPIO{RED}", f"GPIO{STATUS}", f"GPIO{BUZZER}")
    ind.close()


def test_indicators_daemon_shows_a_decision_error_as_fault(tmp_path: Path) -> None:
    from tests.support.gatehelpers import UNKNOWN

    config = setup_config(tmp_path, [None] * 2 + [UNKNOWN] * 2 + [None] * 20,
                          indicators={"status_led_pin": STATUS, "fault_led": [0.05, 0.05]})
    factory = MockFactory()

    def broken_chain(gate: Any) -> None:
        class Broken:
            def check(self, *args: Any) -> None:
                raise RuntimeError("credential store unreadable")
        gate.chain = Broken()

    with running_gate(config, factory, prepare=broken_chain) as gate:
        status = factory.pin(STATUS)
        wait_states(status, 4)  # blinking: the fault pattern
        assert gate.faults.names() == ["decision"]
        assert gate.status_snapshot()["state"] == "fault"


@pytest.mark.parametrize("key", ["granted_led", "offline_led"])
def test_indicators_out_of_range_pattern_is_a_config_error(tmp_path: Path, key: str) -> None:
    from gate.config import ConfigError

    bad = [61.0, 0.0, 1] if key == "granted_led" else [0.1, -1.0]
    config = setup_config(tmp_path, indicators={key: bad})
    with pytest.raises(ConfigError) as info:
        load_config(config)
    assert f"[indicators] {key}" in str(info.value)


def test_indicators_daemon_shows_an_unreachable_server_as_offline(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a loopback port with nobody listening: refused at once
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (tmp_path / "token").write_text("t0ken\n")
    config = setup_config(tmp_path,
                          server={"url": f"http://127.0.0.1:{port}",
                                  "token_file": str(tmp_path / "token"), "timeout_s": 0.2},
                          indicators={"status_led_pin": STATUS, "offline_led": [0.05, 0.05]})
    factory = MockFactory()
    with running_gate(config, factory) as gate:
        wait_until(lambda: gate.status_snapshot()["server_reachable"] is False,
                   what="the sync to fail")
        status = factory.pin(STATUS)
        wait_states(status, 4)  # blinking: the offline pattern
        assert gate.indicators.offline and not gate.indicators.fault
        assert gate.status_snapshot()["state"] == "running"  # offline is not a fault
