"""The decision is journaled before the relay moves: with the journal full (SQLite's own
SQLITE_FULL), a grant is denied, the `journal` fault shows and the relay never moves; with
[journal] on_write_error = "grant_unrecorded" the door opens and the fault shows. Exit-button
grants follow the same rule."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory

from gate.errors import JournalError
from gate.journal import Journal
from tests.support.daemon import journal_events
from tests.support.gatehelpers import ALICE, events_where, running_gate, setup_config, states, wait_until
from tests.support.journalfull import fill_journal, unfill_journal

RELAY, EXIT = 17, 6


def test_journal_full_record_raises_journal_error_and_recovers(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.db", "g")
    try:
        journal.record("system", event="before")
        fill_journal(journal)
        with pytest.raises(JournalError, match="full"):
            journal.record("decision", verdict="grant", reason="ok", source="list")
        unfill_journal(journal)  # no transaction left open by the failure
        journal.record("system", event="after")
        assert [e["event"] for e in journal.events(kind="system")] == ["before", "after"]
        assert list(journal.events(kind="decision")) == []
    finally:
        journal.close()


def status_faults(tmp_path: Path) -> list[str]:
    return list(json.loads((tmp_path / "state" / "status.json").read_text())["faults"])


@pytest.mark.parametrize("policy", ["deny", "grant_unrecorded"])
def test_journal_full_scanned_grant_follows_on_write_error(tmp_path: Path, policy: str) -> None:
    config = setup_config(tmp_path, [None] * 2 + [ALICE] * 2 + [None] * 4,
                          journal={"on_write_error": policy}, door={"open_s": 0.3})
    factory = MockFactory()
    relay = factory.pin(RELAY)
    with running_gate(config, factory, prepare=lambda g: fill_journal(g.journal)) as gate:
        decision = wait_until(lambda: gate.last_decision, what="a decision")
        if policy == "deny":
            assert decision["verdict"] == "deny" and decision["reason"] == "journal_error"
            assert not any(states(relay)), f"the relay moved: {relay.states}"
        else:
            assert decision["verdict"] == "grant"
            wait_until(lambda: any(states(relay)), what="the relay to release")
        assert "journal" in gate.faults
        wait_until(lambda: "journal" in status_faults(tmp_path), what="the fault in status")
    with sqlite3.connect(tmp_path / "state" / "journal.db") as db:
        decisions = db.execute("SELECT count(*) FROM events WHERE kind = 'decision'").fetchone()
    assert decisions == (0,), "no decision could have been committed"


def test_journal_full_exit_button_is_denied_and_the_relay_never_moves(tmp_path: Path) -> None:
    config = setup_config(tmp_path, inputs={"exit_button_pin": EXIT, "bounce_s": 0})
    factory = MockFactory()
    relay = factory.pin(RELAY)
    with running_gate(config, factory, prepare=lambda g: fill_journal(g.journal)) as gate:
        factory.pin(EXIT).drive_low()
        decision = wait_until(lambda: gate.last_decision, what="the button's decision")
        assert decision["reason"] == "journal_error" and decision["source"] == "exit_button"
        assert not any(states(relay)), f"the relay moved: {relay.states}"
        assert "journal" in gate.faults
        unfill_journal(gate.journal)  # space again: the next press opens, and is recorded
        factory.pin(EXIT).drive_high()
        factory.pin(EXIT).drive_low()
        wait_until(lambda: any(states(relay)), what="the relay to release")
        wait_until(lambda: "journal" not in gate.faults, what="the fault to clear")


def test_scanned_grant_is_committed_before_the_relay_and_fsynced_right_after(
        tmp_path: Path) -> None:
    """The order on the door path: commit the decision (no fsync), drive the relay, fsync.
    The fsync's cost (milliseconds on an SD card) never sits between capture and relay."""
    config = setup_config(tmp_path, [None] * 2 + [ALICE] * 2 + [None] * 4,
                          door={"open_s": 0.3})
    factory = MockFactory()
    calls: list[str] = []

    def instrument(gate) -> None:  # type: ignore[no-untyped-def]
        journal, door = gate.journal, gate.door
        write, sync, release = journal.write, journal.sync, door.release

        def traced_write(event, **fields):  # type: ignore[no-untyped-def]
            calls.append(f"write {getattr(event, 'kind', event)}")  # a typed event or a kind
            return write(event, **fields)

        def traced_sync() -> None:
            calls.append("sync")
            sync()

        def traced_release(open_s: float) -> None:
            calls.append("release")
            release(open_s)

        journal.write, journal.sync = traced_write, traced_sync  # type: ignore[method-assign]
        door.release = traced_release  # type: ignore[method-assign]

    with running_gate(config, factory, prepare=instrument) as gate:
        wait_until(lambda: gate.last_decision, what="a decision")
        wait_until(lambda: "release" in calls and "sync" in calls[calls.index("release"):],
                   what="the fsync after the release")
    first = calls.index("write decision")
    assert calls[first + 1] == "release", calls  # committed, then the relay at once
    assert "sync" in calls[first + 2:], calls  # then durable


def test_remote_unlock_goes_through_the_decision_path(tmp_path: Path) -> None:
    """A remote unlock is journaled before the relay moves, is denied (relay still) on a
    full journal under on_write_error = "deny", and is a `lockdown` denial in a lockdown."""
    config = setup_config(tmp_path, door={"open_s": 0.3})
    factory = MockFactory()
    relay = factory.pin(RELAY)
    state = tmp_path / "state"
    with running_gate(config, factory, prepare=lambda g: fill_journal(g.journal)) as gate:
        gate.remote_unlock("cmd-full")
        assert gate.last_decision["reason"] == "journal_error"
        assert gate.last_decision["source"] == "remote"
        assert not any(states(relay)), f"the relay moved: {relay.states}"
        unfill_journal(gate.journal)
        gate.remote_unlock("cmd-ok")
        wait_until(lambda: any(states(relay)), what="the relay to release")
        gate.lockdown.set(True)
        gate.remote_unlock("cmd-locked")
        assert gate.last_decision["reason"] == "lockdown"
    decisions = events_where(state, kind="decision", source="remote")
    assert [(d["command_id"], d["verdict"], d["reason"]) for d in decisions] == [
        ("cmd-ok", "grant", "ok"), ("cmd-locked", "deny", "lockdown")]
    events = journal_events(state)
    granted = next(i for i, e in enumerate(events) if e.get("command_id") == "cmd-ok")
    opened = next(i for i, e in enumerate(events)
                  if e["kind"] == "door" and e.get("state") == "unlocked")
    assert granted < opened, "the door moved before its decision was journaled"
