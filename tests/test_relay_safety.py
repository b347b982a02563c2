"""Relay safety: the relay line is claimed first and driven to locked, and never shows the
unlocked level during start, SIGHUP reloads (good and broken) or stop; both relay polarities.
The daemon runs in-process (`run_daemon`) on mock pins so the pin's whole history is visible."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory, MockPin

from gate.daemon import run_daemon
from tests.support.gatehelpers import events_where, setup_config, wait_event, wait_until

RELAY, CONTACT, EXIT, STAFF = 17, 5, 6, 13
GREEN, RED, STATUS, BUZZER = 22, 23, 24, 25


class RecordingPin(MockPin):
    """A mock pin that records, on its factory, each time a device sets its function."""

    def _set_function(self, value: str) -> None:
        self.factory.claims.append((self.info.name, value))
        super()._set_function(value)


class RecordingFactory(MockFactory):
    def __init__(self) -> None:
        super().__init__(pin_class=RecordingPin)
        self.claims: list[tuple[str, str]] = []


@pytest.fixture
def restore_signals() -> Iterator[None]:
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    yield
    for s, handler in saved.items():
        signal.signal(s, handler)


def full_config(tmp_path: Path, active_high: bool, **door: Any) -> Path:
    return setup_config(
        tmp_path, door={"relay_active_high": active_high, "open_s": 0.5, **door},
        inputs={"door_contact_pin": CONTACT, "exit_button_pin": EXIT,
                "staff_button_pin": STAFF},
        indicators={"granted_led_pin": GREEN, "denied_led_pin": RED,
                    "status_led_pin": STATUS, "buzzer_pin": BUZZER})


def run_in_process(config: Path, factory: MockFactory,
                   during: Any) -> int:
    """run_daemon in this (main) thread; `during(state_dir)` runs in a helper thread and
    ends the daemon with SIGTERM when it returns (or fails)."""
    failure: list[BaseException] = []

    def helper() -> None:
        try:
            during(config.parent / "state")
        except BaseException as exc:
            failure.append(exc)
        finally:
            os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=helper, daemon=True)
    thread.start()
    rc = run_daemon(config, pin_factory=factory)
    thread.join(timeout=10)
    if failure:
        raise failure[0]
    return rc


@pytest.mark.parametrize("active_high", [True, False], ids=["active_high", "active_low"])
def test_relay_never_blips_across_start_reload_and_stop(tmp_path: Path, restore_signals,
                                                        active_high: bool) -> None:
    config = full_config(tmp_path, active_high)
    factory = RecordingFactory()
    relay = factory.pin(RELAY)
    locked_level = not active_high
    if locked_level:
        relay.drive_high()  # an active-low board pulls its input up: idle reads "off"
    relay.clear_states()
    factory.claims.clear()
    seen_output: list[bool] = []

    def during(state_dir: Path) -> None:
        wait_event(state_dir, kind="system", event="started")
        seen_output.append(relay.function == "output")
        text = config.read_text()
        config.write_text(text.replace("open_s = 0.5", "open_s = 0.7")
                          + "\n# reloaded\n")
        os.kill(os.getpid(), signal.SIGHUP)
        wait_event(state_dir, kind="system", event="reloaded")
        config.write_text(text + "\n[door]\nrelay_pin = 'seventeen'\n")  # broken
        os.kill(os.getpid(), signal.SIGHUP)
        wait_event(state_dir, kind="system", event="reload_failed")

    rc = run_in_process(config, factory, during)
    assert rc == 0
    assert seen_output == [True]
    history = [bool(s.state) for s in relay.states]
    assert history == [locked_level], f"the relay line moved: {relay.states}"
    assert factory.claims[0] == (f"GPIO{RELAY}", "output"), factory.claims[:3]
    assert relay.function == "input"  # released at stop, still at the locked level
    state_dir = tmp_path / "state"
    assert events_where(state_dir, kind="door", state="unlocked") == []
    assert len(events_where(state_dir, kind="system", event="reloaded")) == 1


def test_relay_grant_then_reload_keeps_the_pulse_and_locks_at_stop(tmp_path: Path,
                                                                  restore_signals) -> None:
    # A grant during the run: the history is exactly one pulse, whatever the reload does.
    from tests.support.gatehelpers import ALICE

    config = setup_config(tmp_path, [None] * 2 + [ALICE] * 2 + [None] * 30,
                          door={"relay_active_high": False, "open_s": 0.3})
    factory = RecordingFactory()
    relay = factory.pin(RELAY)
    relay.drive_high()
    relay.clear_states()

    def during(state_dir: Path) -> None:
        wait_event(state_dir, kind="door", state="locked")
        os.kill(os.getpid(), signal.SIGHUP)
        wait_event(state_dir, kind="system", event="reloaded")

    assert run_in_process(config, factory, during) == 0
    assert [bool(s.state) for s in relay.states] == [True, False, True]
    assert relay.states[2].timestamp >= 0.25


def test_relay_stays_locked_when_the_start_fails_after_claiming_it(tmp_path: Path,
                                                                  restore_signals) -> None:
    config = full_config(tmp_path, active_high=False)
    # The preflight (token, allowlist, pin factory) passes; the camera is opened after the
    # relay is claimed, and finds no frames: the start fails with the relay already held.
    for frame in (tmp_path / "frames").iterdir():
        frame.unlink()
    factory = RecordingFactory()
    relay = factory.pin(RELAY)
    relay.drive_high()
    relay.clear_states()
    assert run_daemon(config, pin_factory=factory) != 0
    assert [bool(s.state) for s in relay.states] == [True]
    assert factory.claims[0] == (f"GPIO{RELAY}", "output")
    assert relay.function == "input"


def test_relay_is_released_locked_when_stopped_mid_pulse(tmp_path: Path,
                                                         restore_signals) -> None:
    from tests.support.gatehelpers import ALICE

    config = setup_config(tmp_path, [ALICE] * 2 + [None] * 30, door={"open_s": 30.0})
    factory = RecordingFactory()
    relay = factory.pin(RELAY)

    def during(state_dir: Path) -> None:
        wait_event(state_dir, kind="door", state="unlocked")

    assert run_in_process(config, factory, during) == 0
    assert [bool(s.state) for s in relay.states] == [False, True, False]
    assert relay.function == "input"
    wait_until(lambda: events_where(tmp_path / "state", kind="door", state="locked"))


def test_reload_applies_live_keys_and_journals_which_wait_for_a_restart(
        tmp_path: Path, restore_signals) -> None:
    # One reload changes a live key (door.open_s), wiring keys
    # (door.relay_pin, inputs.exit_button_pin, camera.fps) and adds a whole restart-only
    # section ([metrics]): the schema sorts them, the relay is not rebuilt, no new pin claimed.
    config = full_config(tmp_path, True)
    factory = RecordingFactory()
    relay = factory.pin(RELAY)
    relay.clear_states()
    factory.claims.clear()
    reloaded: list[dict[str, Any]] = []

    def during(state_dir: Path) -> None:
        wait_event(state_dir, kind="system", event="started")
        text = config.read_text()
        text = (text.replace("open_s = 0.5", "open_s = 0.7")
                .replace("relay_pin = 17", "relay_pin = 27")
                .replace("exit_button_pin = 6", "exit_button_pin = 16")
                .replace("fps = 20", "fps = 10"))
        config.write_text(text + "\n[metrics]\nlisten = \"127.0.0.1:9\"\n")
        os.kill(os.getpid(), signal.SIGHUP)
        reloaded.append(wait_event(state_dir, kind="system", event="reloaded"))

    assert run_in_process(config, factory, during) == 0
    event = reloaded[0]
    assert event["applied"] == ["door.open_s"], event
    assert event["restart_needed"] == ["camera.fps", "door.relay_pin",
                                       "inputs.exit_button_pin", "metrics"], event
    assert [bool(s.state) for s in relay.states] == [False]  # locked, never rebuilt
    assert not any(name in ("GPIO27", "GPIO16") for name, _ in factory.claims), factory.claims
