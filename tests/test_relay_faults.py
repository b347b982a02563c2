"""A relay write that raises never leaves the door released: on pins whose writes fail once
(retried, locked, reported as recovered) or always (the door is `failed`, releases are
refused, the daemon journals a `relay` fault, shows it in its status and exits 1)."""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory, MockPin

from gate.door.pins import claim_relay_pin
from gate.door.relay import LOCKED, UNLOCKED, Door, Relay
from gate.errors import RelayFault
from tests.support.gatehelpers import ALICE, events_where, setup_config, wait_until

RELAY = 17


class FlakyPin(MockPin):
    """A mock pin whose next `fail` writes raise OSError (-1: every write from now on)."""

    fail = 0

    def _set_state(self, value: bool) -> None:
        if self.fail:
            self.fail -= 1 if self.fail > 0 else 0
            raise OSError(5, "Input/output error")
        super()._set_state(value)

    def output_with_state(self, state: bool) -> None:  # gpiozero's claim-and-write in one
        self.function = "output"
        self.state = state


def flaky_factory() -> tuple[MockFactory, FlakyPin]:
    factory = MockFactory(pin_class=FlakyPin)
    return factory, factory.pin(RELAY)


class Faults:
    def __init__(self) -> None:
        self.reports: list[tuple[str, bool]] = []
        self.states: list[str] = []

    def fault(self, detail: str, recovered: bool) -> None:
        self.reports.append((detail, recovered))

    def change(self, state: str) -> None:
        self.states.append(state)


def make_door(factory: MockFactory) -> tuple[Door, Faults]:
    seen = Faults()
    return Door(Relay(RELAY, pin_factory=factory), on_change=seen.change,
                on_fault=seen.fault), seen


def test_relay_fault_timer_lock_that_fails_once_is_retried_and_reported() -> None:
    factory, pin = flaky_factory()
    door, seen = make_door(factory)
    try:
        door.release(0.05)
        pin.fail = 1  # the timer's lock raises once
        wait_until(lambda: seen.states == [UNLOCKED, LOCKED], what="the retried lock")
        assert pin.state is False and not door.is_unlocked
        assert door.failed is None
        assert len(seen.reports) == 1 and seen.reports[0][1] is True
        door.release(0.05)  # still usable
        wait_until(lambda: len(seen.states) == 4, what="a second pulse")
    finally:
        door.close()


def test_relay_fault_timer_lock_that_always_fails_marks_the_door_failed() -> None:
    factory, pin = flaky_factory()
    door, seen = make_door(factory)
    try:
        door.release(0.05)
        pin.fail = -1
        wait_until(lambda: door.failed is not None, what="the door to be marked failed")
        assert seen.reports[-1][1] is False and "3 times" in seen.reports[-1][0]
        assert len([r for r in seen.reports if not r[1]]) == 1, "reported once, not per retry"
        with pytest.raises(RelayFault):
            door.release(1.0)
        # the timer keeps trying: once the line takes writes again, it is locked
        pin.fail = 0
        wait_until(lambda: pin.state is False, what="the timer's relock")
        with pytest.raises(RelayFault):  # still failed for good: the daemon must restart
            door.release(1.0)
    finally:
        door.close()
    assert door.relay.closed


def test_relay_fault_lock_and_close_that_always_fail_raise_then_release_the_pin() -> None:
    factory, pin = flaky_factory()
    door, _ = make_door(factory)
    door.release(30)
    pin.fail = -1
    with pytest.raises(RelayFault):
        door.lock()
    door.close()  # never raises: logs, releases the pin (a freed line falls to its pull)
    assert door.failed is not None and door.relay.closed and pin.function == "input"


def test_relay_fault_release_whose_unlock_raises_locks_again_and_raises() -> None:
    factory, pin = flaky_factory()
    door, seen = make_door(factory)
    try:
        pin.fail = 1  # relay.on() raises; the lock that follows works
        with pytest.raises(RelayFault):
            door.release(5)
        assert pin.state is False and not door.is_unlocked and door.failed is None
        assert seen.reports and seen.reports[0][1] is True
        assert door._deadline is None, "no pulse left pending for a door that never opened"
    finally:
        door.close()


def test_relay_fault_claim_retries_a_first_write_that_fails_once() -> None:
    factory, pin = flaky_factory()
    pin.fail = 1
    relay = claim_relay_pin(RELAY, True, factory)
    try:
        assert pin.function == "output" and pin.state is False
    finally:
        relay.close()


def test_relay_fault_claim_that_always_fails_raises_and_frees_the_pin() -> None:
    factory, pin = flaky_factory()
    pin.fail = -1
    with pytest.raises(RelayFault, match="could not be driven locked"):
        claim_relay_pin(RELAY, True, factory)
    pin.fail = 0
    claim_relay_pin(RELAY, True, factory).close()  # not left reserved by the failed tries


# -- the daemon -------------------------------------------------------------------------------

@pytest.fixture
def restore_signals() -> Any:
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    yield
    for s, handler in saved.items():
        signal.signal(s, handler)


def run_daemon_until(config: Path, factory: MockFactory, during: Any,
                     stop_after: bool) -> int:
    """run_daemon in the main thread; `during(state_dir)` in a helper thread; SIGTERM when
    it returns if `stop_after`, and in any case after 20 s (a daemon that did not exit)."""
    from gate.daemon import run_daemon

    failure: list[BaseException] = []
    fired: list[bool] = []

    def rescue() -> None:
        fired.append(True)
        os.kill(os.getpid(), signal.SIGTERM)

    guard = threading.Timer(20.0, rescue)

    def helper() -> None:
        try:
            during(config.parent / "state")
        except BaseException as exc:
            failure.append(exc)
        if stop_after or failure:
            os.kill(os.getpid(), signal.SIGTERM)

    guard.start()
    thread = threading.Thread(target=helper, daemon=True)
    thread.start()
    try:
        rc = run_daemon(config, pin_factory=factory)
    finally:
        guard.cancel()
    thread.join(timeout=10)
    if failure:
        raise failure[0]
    assert not fired, "the daemon had to be stopped from outside"
    return rc


def relay_errors(state_dir: Path) -> list[dict[str, Any]]:
    return events_where(state_dir, kind="system", event="error", where="relay")


def test_relay_fault_daemon_lock_that_fails_once_keeps_running_locked(
        tmp_path: Path, restore_signals: None) -> None:
    config = setup_config(tmp_path, [ALICE] * 2 + [None] * 30, door={"open_s": 0.3})
    factory, pin = flaky_factory()

    def during(state_dir: Path) -> None:
        wait_until(lambda: events_where(state_dir, kind="door", state="unlocked"))
        pin.fail = 1
        wait_until(lambda: events_where(state_dir, kind="door", state="locked"))
        assert pin.state is False

    assert run_daemon_until(config, factory, during, stop_after=True) == 0
    errors = relay_errors(tmp_path / "state")
    assert len(errors) == 1 and errors[0]["recovered"] is True
    status = json.loads((tmp_path / "state" / "status.json").read_text())
    assert "relay" not in status["faults"]


def test_relay_fault_daemon_lock_that_always_fails_exits_1_with_the_fault(
        tmp_path: Path, restore_signals: None) -> None:
    config = setup_config(tmp_path, [ALICE] * 2 + [None] * 30, door={"open_s": 0.3})
    factory, pin = flaky_factory()

    def during(state_dir: Path) -> None:
        wait_until(lambda: events_where(state_dir, kind="door", state="unlocked"))
        pin.fail = -1  # the frame loop must notice on its own: no signal is sent

    assert run_daemon_until(config, factory, during, stop_after=False) == 1
    state_dir = tmp_path / "state"
    errors = relay_errors(state_dir)
    assert errors and errors[-1]["recovered"] is False
    assert events_where(state_dir, kind="system", event="stopped", reason="relay_fault")
    status = json.loads((state_dir / "status.json").read_text())
    assert "relay" in status["faults"]
    assert pin.function == "input", "the pin is released at exit (ExecStopPost locks it)"


def test_relay_fault_daemon_start_whose_claim_always_fails_exits_1(
        tmp_path: Path, restore_signals: None) -> None:
    from gate.daemon import run_daemon

    config = setup_config(tmp_path)
    factory, pin = flaky_factory()
    pin.fail = -1
    assert run_daemon(config, pin_factory=factory) == 1
    assert not (tmp_path / "state" / "journal.db").exists(), "nothing built past the relay"
