"""The door monitor: door open/closed events, the held-open and forced-open alarms, against a
real relay on mock pins and a real journal."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory

from gate.door.alarms import DoorMonitor
from gate.door.inputs import DoorContact
from gate.door.relay import Door, Relay
from gate.journal import Journal
from tests.support.gatehelpers import events_where, running_gate, setup_config, wait_event, wait_until

CONTACT, RELAY = 5, 17


class Rig:
    """Relay, door, contact, journal and monitor, with the contact's pin to drive."""

    def __init__(self, tmp_path: Path, factory: MockFactory, **monitor: Any) -> None:
        self.pin = factory.pin(CONTACT)
        self.journal = Journal(tmp_path / "journal.db", "test")
        self.monitor_changed = threading.Event()
        self.door = Door(Relay(RELAY, pin_factory=factory),
                         on_change=lambda state: self.monitor.relay_changed(state))
        self.contact = DoorContact(CONTACT, settle_s=0, pin_factory=factory)
        self.pin.drive_low()  # the door starts shut
        kwargs = {"held_open_s": 0, "grace_s": 1.0, **monitor}
        self.monitor = DoorMonitor(self.contact, self.journal,
                                   is_unlocked=lambda: self.door.is_unlocked,
                                   on_change=self.monitor_changed.set, **kwargs)

    def open_door(self) -> None:
        self.pin.drive_high()

    def shut_door(self) -> None:
        self.pin.drive_low()

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        return list(self.journal.events(kind=kind))

    def alarms(self) -> list[tuple[str, str]]:
        return [(e["alarm"], e["event"]) for e in self.events("alarm")]

    def close(self) -> None:
        self.monitor.close()
        self.contact.close()
        self.door.close()
        self.journal.close()


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Any]:
    made: list[Rig] = []

    def make(**monitor: Any) -> Rig:
        r = Rig(tmp_path, MockFactory(), **monitor)
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


def test_alarms_contact_changes_are_door_events_with_open_time(rig) -> None:
    r = rig()
    r.door.release(5.0)
    r.open_door()
    r.shut_door()
    door = r.events("door")
    assert [e["state"] for e in door] == ["open", "closed"]
    assert door[1]["open_for_s"] >= 0
    assert r.monitor.snapshot() == {"contact": "closed", "alarms": []}


def test_alarms_door_opened_while_locked_is_forced_open_until_it_shuts(rig) -> None:
    r = rig()
    assert not r.door.is_unlocked
    r.open_door()
    assert r.alarms() == [("forced_open", "raised")]
    assert r.monitor.snapshot()["alarms"] == ["forced_open"]
    r.shut_door()
    assert r.alarms() == [("forced_open", "raised"), ("forced_open", "cleared")]
    assert r.monitor.snapshot()["alarms"] == []


def test_alarms_door_opened_during_a_grant_is_not_forced(rig) -> None:
    r = rig()
    r.door.release(5.0)
    r.open_door()
    r.shut_door()
    assert r.alarms() == []


def test_alarms_door_opened_just_after_relock_is_within_the_grace(rig) -> None:
    now = [1000.0]
    r = rig(grace_s=2.0, clock=lambda: now[0])
    r.door.release(5.0)
    r.door.lock()  # the pulse ends; the door is still swinging
    now[0] += 1.5
    r.open_door()
    r.shut_door()
    assert r.alarms() == []
    now[0] += 2.5  # well after the relock: someone pulls the door open
    r.open_door()
    assert r.alarms() == [("forced_open", "raised")]


def test_alarms_door_already_open_at_start_is_journaled_but_not_forced(tmp_path: Path) -> None:
    factory = MockFactory()
    journal = Journal(tmp_path / "journal.db", "test")
    door = Door(Relay(RELAY, pin_factory=factory))
    contact = DoorContact(CONTACT, settle_s=0, pin_factory=factory)  # pulled high: open
    monitor = DoorMonitor(contact, journal, is_unlocked=lambda: door.is_unlocked,
                          held_open_s=0, grace_s=0)
    try:
        [event] = list(journal.events(kind="door"))
        assert event["state"] == "open" and event["initial"] is True
        assert list(journal.events(kind="alarm")) == []
    finally:
        monitor.close()
        contact.close()
        door.close()
        journal.close()


def test_alarms_door_held_open_past_held_open_s_raises_once_then_clears(rig) -> None:
    r = rig(held_open_s=0.3)
    r.door.release(10.0)
    r.open_door()
    r.monitor_changed.clear()
    wait_until(lambda: r.alarms(), timeout=5, what="held_open alarm")
    assert r.alarms() == [("held_open", "raised")]
    raised = r.events("alarm")[0]
    assert raised["open_for_s"] >= 0.29
    assert r.monitor_changed.wait(2)  # the status file hears of it
    assert r.monitor.snapshot()["alarms"] == ["held_open"]
    r.shut_door()
    assert r.alarms() == [("held_open", "raised"), ("held_open", "cleared")]


def test_alarms_door_shut_in_time_raises_no_held_open(rig) -> None:
    r = rig(held_open_s=0.4)
    r.door.release(10.0)
    r.open_door()
    r.shut_door()
    r.monitor_changed.clear()
    assert not r.monitor_changed.wait(0.7)  # past held_open_s: nothing more happened
    assert r.alarms() == []


def test_alarms_a_lost_edge_is_caught_up_by_the_resync(rig) -> None:
    r = rig(resync_s=0.05)
    r.door.release(10.0)
    # A level change whose callback never arrived (the mock pin changes without calling back).
    r.pin._change_state(True)
    wait_until(lambda: r.events("door"), timeout=5, what="door open event from the resync")
    assert [e["state"] for e in r.events("door")] == ["open"]


def test_alarms_forced_open_in_the_running_daemon_with_a_bouncy_contact(tmp_path: Path) -> None:
    config = setup_config(tmp_path, door={"forced_open_grace_s": 0.5},
                          inputs={"door_contact_pin": CONTACT, "bounce_s": 0.05})
    factory = MockFactory()
    contact = factory.pin(CONTACT)

    def shut(gate: Any) -> None:
        # A mock pin reads its pull-up when claimed; a real shut door holds it low.
        contact.drive_low()
        wait_until(lambda: gate.door_io.monitor.state == "closed", what="the door reads shut")

    with running_gate(config, factory, prepare=shut) as gate:
        contact.drive_high()
        contact.drive_low()  # a knock: shorter than bounce_s, not an opening
        contact.drive_high()  # forced open, settles
        raised = wait_event(tmp_path / "state", kind="alarm", alarm="forced_open")
        wait_until(lambda: gate.status_snapshot()["door"]["alarms"] == ["forced_open"])
        contact.drive_low()
        wait_event(tmp_path / "state", kind="alarm", event="cleared")
    assert raised["event"] == "raised"
    doors = [e["state"] for e in events_where(tmp_path / "state", kind="door")
             if not e.get("initial")]
    assert doors == ["closed", "open", "closed"]  # the knock left no trace
