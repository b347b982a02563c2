"""The seams between building and running: a button before the gate runs, the relay's
events routed in order to the parts that follow the door, the last decision handed out as
a copy."""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import Any

from gpiozero.pins.mock import MockFactory

from gate.config import InputsSection
from gate.door.doorio import DoorIO
from gate.faults import Faults
from gate.journal import Journal
from gate.recorder import DoorEvents, Recorder
from gate.snapshot import LastDecision


class FakeDoor:
    is_unlocked = False


def test_wiring_exit_button_before_the_gate_runs_grants_nothing(tmp_path: Path) -> None:
    factory = MockFactory()
    grants: list[tuple[Any, ...]] = []
    with contextlib.ExitStack() as parts:
        journal = Journal(tmp_path / "j.db", "g1")
        parts.callback(journal.close)
        io = DoorIO(InputsSection(exit_button_pin=5, bounce_s=0.0), FakeDoor(),  # type: ignore[arg-type]
                    journal, parts, open_s=3.0, held_open_s=30.0, grace_s=1.0,
                    pin_factory=factory)
        io._exit_pressed()  # nobody to decide yet: ignored, the door stays locked
        assert grants == []
        io.when_grant = lambda *args: grants.append(args)
        io._exit_pressed()
        assert grants == [("exit_request", "exit_button", 3.0, None)]


def test_wiring_door_events_reach_followers_in_order_and_a_fatal_fault_stops(
        tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.db", "g1")
    try:
        faults, stop = Faults(), threading.Event()
        events = DoorEvents(Recorder(journal, faults), stop)
        seen: list[str] = []
        events.follow(lambda s: seen.append(f"indicators:{s}"))
        events.follow(lambda s: seen.append(f"monitor:{s}"), first=True)
        fatal: list[bool] = []
        events.on_fatal(lambda: fatal.append(True))
        events.changed("unlocked")
        assert seen == ["monitor:unlocked", "indicators:unlocked"]
        events.fault("lock failed once", recovered=True)
        assert not stop.is_set() and "relay" not in faults
        events.fault("lock failed 3 times", recovered=False)
        assert stop.is_set() and "relay" in faults and fatal == [True]
        kinds = [e["kind"] for e in journal.events()]
        assert kinds.count("door") == 1 and kinds.count("system") == 2
    finally:
        journal.close()


def test_wiring_last_decision_is_a_copy() -> None:
    last = LastDecision()
    assert last.get() is None
    last.set("grant", "ok", "list", "Alice")
    got = last.get()
    assert got is not None and got["verdict"] == "grant" and got["label"] == "Alice"
    got["verdict"] = "deny"
    assert last.get()["verdict"] == "grant"  # type: ignore[index]
