"""Door contact, exit button and staff button: wiring levels, settling (debounce), and what the
daemon does with each, driven through gpiozero's mock pins."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory

from gate.door.inputs import (
    DoorContact,
    ExitButton,
    StaffButton,
    StaffCheck,
    StaffWindow,
)
from tests.support.gatehelpers import (
    STAFFER,
    UNKNOWN,
    events_where,
    running_gate,
    setup_config,
    states,
    wait_event,
    wait_until,
)

CONTACT, EXIT, STAFF, RELAY = 5, 6, 13, 17


def recorder(device: object, *names: str) -> tuple[list[str], threading.Event]:
    """Attach a callback to each event name; returns what fired, in order, and an Event set
    at every firing."""
    fired: list[str] = []
    any_fired = threading.Event()
    for name in names:
        def cb(name: str = name) -> None:
            fired.append(name)
            any_fired.set()
        setattr(device, name, cb)
    return fired, any_fired


# -- the door contact ---------------------------------------------------------------------------

def test_inputs_door_contact_normally_closed_opens_when_the_circuit_opens(pins) -> None:
    contact = DoorContact(CONTACT, normally_closed=True, settle_s=0, pin_factory=pins)
    pin = pins.pin(CONTACT)
    assert pin.pull == "up"  # switch to GND, internal pull-up
    fired, _ = recorder(contact, "when_opened", "when_closed")
    pin.drive_low()  # circuit closed: door shut
    assert not contact.is_open
    pin.drive_high()  # circuit open: door open (or a cut wire)
    assert contact.is_open
    pin.drive_low()
    assert fired == ["when_closed", "when_opened", "when_closed"]
    contact.close()


def test_inputs_door_contact_normally_open_opens_when_the_circuit_closes(pins) -> None:
    contact = DoorContact(CONTACT, normally_closed=False, settle_s=0, pin_factory=pins)
    pin = pins.pin(CONTACT)
    fired, _ = recorder(contact, "when_opened", "when_closed")
    assert not contact.is_open  # pulled high: switch open: door shut
    pin.drive_low()
    assert contact.is_open
    pin.drive_high()
    assert not contact.is_open
    assert fired == ["when_opened", "when_closed"]
    assert contact.wait_for_close(0)
    contact.close()


def test_inputs_door_contact_chatter_shorter_than_settle_time_is_ignored(pins) -> None:
    contact = DoorContact(CONTACT, settle_s=0.2, pin_factory=pins)
    pin = pins.pin(CONTACT)
    pin.drive_low()
    assert contact.wait_for_close(2)
    fired, _ = recorder(contact, "when_opened", "when_closed")
    pin.drive_high()
    pin.drive_low()  # back within 0.2 s: a knock on the door, not an opening
    assert not contact.wait_for_open(0.5)
    assert fired == []
    contact.close()


def test_inputs_door_contact_bouncing_edge_counts_once_after_it_settles(pins) -> None:
    contact = DoorContact(CONTACT, settle_s=0.05, pin_factory=pins)
    pin = pins.pin(CONTACT)
    pin.drive_low()
    assert contact.wait_for_close(2)
    fired, fired_event = recorder(contact, "when_opened", "when_closed")
    for _ in range(5):  # the reed switch bounces as the magnet moves away
        pin.drive_high()
        pin.drive_low()
    pin.drive_high()
    assert fired_event.wait(2)
    assert contact.wait_for_open(0)
    assert not contact.wait_for_close(0.2)
    assert fired == ["when_opened"]
    contact.close()


# -- the buttons --------------------------------------------------------------------------------

@pytest.mark.parametrize("cls", [ExitButton, StaffButton])
def test_inputs_button_press_to_gnd_fires_once_despite_bounce(pins, cls: type) -> None:
    button = cls(EXIT, settle_s=0.05, pin_factory=pins)
    pin = pins.pin(EXIT)
    assert pin.pull == "up" and not button.is_pressed
    fired, fired_event = recorder(button, "when_pressed", "when_released")
    for _ in range(4):
        pin.drive_low()
        pin.drive_high()
    pin.drive_low()
    assert fired_event.wait(2)
    assert button.is_pressed
    assert not button.wait_for_release(0.2)
    assert fired == ["when_pressed"]
    button.close()


def test_inputs_staff_window_grants_once_and_only_within_the_window() -> None:
    now = [100.0]
    window = StaffWindow(10.0, clock=lambda: now[0])
    check = StaffCheck("ab" * 32, "Visitor", None, "status_yellow", "server", 4.0)
    assert window.take() is None
    window.open(check)
    now[0] += 9.9
    assert window.take() == check
    assert window.take() is None  # one press, one grant
    window.open(check)
    now[0] += 10.1
    assert window.take() is None


def test_inputs_staff_window_any_later_decision_supersedes_the_check() -> None:
    now = [100.0]
    window = StaffWindow(10.0, clock=lambda: now[0])
    a = StaffCheck("aa" * 32, "Visitor A", None, "status_yellow", "server", 4.0)
    b = StaffCheck("bb" * 32, "Visitor B", None, "status_yellow", "server", 4.0)
    window.supersede(a)
    window.supersede(None)  # B was denied (or granted) after A's staff verdict
    assert window.take() is None, "the button must not confirm A after a later decision"
    window.supersede(a)
    window.supersede(b)     # B answered staff after A: only B can be confirmed
    assert window.take() == b
    window.supersede(a)
    window.cancel()
    assert window.take() is None


# -- the daemon with the inputs -----------------------------------------------------------------

def test_inputs_exit_button_releases_the_door_for_open_s_and_journals_it(tmp_path: Path) -> None:
    config = setup_config(tmp_path, door={"open_s": 0.4},
                          inputs={"exit_button_pin": EXIT, "bounce_s": 0.0})
    factory = MockFactory()
    with running_gate(config, factory) as gate:
        relay = factory.pin(RELAY)
        relay.clear_states()
        factory.pin(EXIT).drive_low()
        factory.pin(EXIT).drive_high()
        wait_until(lambda: len(relay.states) >= 3, what="relay unlock and relock")
        decision = wait_event(tmp_path / "state", kind="decision", source="exit_button")
        assert gate.last_decision["source"] == "exit_button"
    assert states(relay) == [False, True, False]
    assert relay.states[2].timestamp >= 0.35  # held for open_s = 0.4
    assert (decision["verdict"], decision["reason"]) == ("grant", "exit_request")
    assert decision["code_sha256"] is None and decision["latency_ms"] >= 0
    doors = [e["state"] for e in events_where(tmp_path / "state", kind="door")]
    assert doors[:2] == ["unlocked", "locked"]


class StaffFor:
    """Answers `staff` for one code; the allowlist cannot, so this stands in for a server."""

    def __init__(self, payload: str) -> None:
        self.payload = payload.encode()

    def check(self, sha: str, code: bytes, now: float):
        from gate.verify import Decision

        if code != self.payload:
            return None
        return Decision(verdict="staff", reason="status_yellow", source="server",
                        label="Check me")


def staff_chain(gate) -> None:
    from gate.verify import VerifierChain

    gate.chain = VerifierChain([StaffFor(STAFFER)])


def test_inputs_staff_button_grants_the_code_that_answered_staff(tmp_path: Path) -> None:
    config = setup_config(tmp_path, [None] * 2 + [STAFFER] * 2 + [None] * 40,
                          door={"open_s": 0.3},
                          inputs={"staff_button_pin": STAFF, "bounce_s": 0.0,
                                  "staff_window_s": 30})
    factory = MockFactory()
    with running_gate(config, factory, prepare=staff_chain):
        relay, staff = factory.pin(RELAY), factory.pin(STAFF)
        wait_event(tmp_path / "state", kind="decision", verdict="staff")
        assert len(relay.states) == 1, "a staff verdict must not move the relay"
        staff.drive_low()
        staff.drive_high()
        override = wait_event(tmp_path / "state", kind="decision", source="staff_button")
        wait_until(lambda: len(relay.states) >= 3, what="relay pulse")
        staff.drive_low()  # a second press: the window was used up
        staff.drive_high()
    assert states(relay)[:3] == [False, True, False]
    assert relay.states[2].timestamp >= 0.25  # the pulse lasted open_s = 0.3
    staff_decision = events_where(tmp_path / "state", kind="decision", verdict="staff")[0]
    assert override["verdict"] == "grant" and override["reason"] == "staff_override"
    assert override["label"] == "Check me"
    assert override["code_sha256"] == staff_decision["code_sha256"]
    assert (override["override_reason"], override["override_source"]) == ("status_yellow",
                                                                          "server")
    assert len(events_where(tmp_path / "state", source="staff_button")) == 1


def test_inputs_staff_button_without_a_staff_check_waiting_opens_nothing(tmp_path: Path) -> None:
    config = setup_config(tmp_path, inputs={"staff_button_pin": STAFF, "bounce_s": 0.0})
    factory = MockFactory()
    with running_gate(config, factory) as gate:
        relay, staff = factory.pin(RELAY), factory.pin(STAFF)
        wait_until(lambda: gate.frame_rate.fps() > 0, what="frames flowing")
        staff.drive_low()
        staff.drive_high()
        assert staff.state and gate.door_io.staff_window.take() is None
    assert len(relay.states) == 1
    assert events_where(tmp_path / "state", kind="decision") == []


def test_inputs_without_pins_configured_no_input_is_claimed(tmp_path: Path) -> None:
    config = setup_config(tmp_path)
    factory = MockFactory()
    with running_gate(config, factory) as gate:
        assert gate.door_io.monitor is None and gate.door_io.staff_window is None
        claimed = {info.name for info in factory.pins}
    assert claimed == {f"GPIO{RELAY}"}, claimed


def test_inputs_staff_button_after_a_later_denial_confirms_nobody(tmp_path: Path) -> None:
    """Visitor A answered staff, then visitor B was denied: the guard's press opens nothing."""
    config = setup_config(tmp_path, [None] * 2 + [STAFFER] * 2 + [None] * 6 + [UNKNOWN] * 2
                          + [None] * 60, door={"open_s": 0.3},
                          inputs={"staff_button_pin": STAFF, "bounce_s": 0.0,
                                  "staff_window_s": 30})
    factory = MockFactory()
    with running_gate(config, factory, prepare=staff_chain) as gate:
        relay, staff = factory.pin(RELAY), factory.pin(STAFF)
        wait_event(tmp_path / "state", kind="decision", verdict="staff")
        wait_event(tmp_path / "state", kind="decision", verdict="deny", reason="unknown")
        staff.drive_low()
        staff.drive_high()
        assert gate.door_io.staff_window.take() is None
    assert events_where(tmp_path / "state", source="staff_button") == []
    assert len(relay.states) == 1, "the relay never moved"
