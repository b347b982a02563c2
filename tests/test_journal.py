"""The journal: append-only SQLite (WAL) events in the DESIGN format, committed before record()
returns, readable by another process at once, and the outbox for upload."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from gate.journal import AlarmEvent, DecisionEvent, Journal, SystemEvent, as_fields, event_of, to_rfc3339, utc_now

RFC3339_UTC_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    j = Journal(tmp_path / "state" / "journal.db", "lobby-north")
    yield j
    j.close()


def next_millisecond() -> None:
    """Wait until utc_now() moves on, so that two events get different `at` stamps."""
    now = utc_now()
    deadline = time.monotonic() + 1
    while utc_now() == now and time.monotonic() < deadline:
        time.sleep(0.001)


def test_journal_database_is_in_wal_mode(journal: Journal) -> None:
    with sqlite3.connect(journal.path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_journal_record_returns_the_event_in_design_format(journal: Journal) -> None:
    before = utc_now()
    event = journal.record("decision", verdict="grant", reason="ok", source="list",
                           label="Alice", code_sha256="ab" * 32, latency_ms=12.5)
    assert set(event) >= {"id", "at", "gate", "kind"}
    assert event["gate"] == "lobby-north" and event["kind"] == "decision"
    assert RFC3339_UTC_MS.match(event["at"]), event["at"]
    assert before <= event["at"] <= utc_now()
    assert (event["verdict"], event["reason"], event["source"], event["label"],
            event["latency_ms"]) == ("grant", "ok", "list", "Alice", 12.5)
    assert list(journal.events()) == [event]  # stored exactly as returned
    json.dumps(event)  # and it is JSON as `gate journal --json` prints it


def test_journal_event_ids_are_unique(journal: Journal) -> None:
    ids = {journal.record("system", event="tick")["id"] for _ in range(50)}
    assert len(ids) == 50


def test_journal_events_come_back_in_recording_order(journal: Journal) -> None:
    for state in ("unlocked", "locked", "unlocked", "locked"):
        journal.record("door", state=state)
    assert [e["state"] for e in journal.events()] == ["unlocked", "locked", "unlocked", "locked"]


def test_journal_events_since_filter(journal: Journal) -> None:
    journal.record("system", event="early")
    next_millisecond()
    middle = journal.record("system", event="middle")
    next_millisecond()
    journal.record("system", event="late")
    assert [e["event"] for e in journal.events(since=middle["at"])] == ["middle", "late"]
    future = to_rfc3339(datetime.now(timezone.utc) + timedelta(hours=1))
    assert list(journal.events(since=future)) == []
    past = to_rfc3339(datetime.now(timezone.utc) - timedelta(days=1))
    assert len(list(journal.events(since=past))) == 3


def test_journal_events_kind_filter(journal: Journal) -> None:
    journal.record("door", state="unlocked")
    journal.record("decision", verdict="deny", reason="unknown", source="none")
    journal.record("door", state="locked")
    assert [e["state"] for e in journal.events(kind="door")] == ["unlocked", "locked"]
    assert [e["verdict"] for e in journal.events(kind="decision")] == ["deny"]
    assert list(journal.events(kind="alarm")) == []


def test_to_rfc3339_converts_to_utc_with_milliseconds() -> None:
    aware = datetime(2026, 11, 25, 20, 4, 25, 123456, tzinfo=timezone(timedelta(hours=1)))
    assert to_rfc3339(aware) == "2026-11-25T19:04:25.123Z"
    naive = datetime(2026, 11, 25, 20, 4, 25)  # the gate's local time
    assert to_rfc3339(naive) == to_rfc3339(naive.astimezone())
    assert RFC3339_UTC_MS.match(utc_now())


def test_journal_outbox_pending_mark_uploaded_and_prune(journal: Journal) -> None:
    events = [journal.record("system", event=f"e{i}") for i in range(5)]
    pending = journal.pending(limit=10)
    assert [e for _seq, e in pending] == events
    seqs = [seq for seq, _e in pending]
    assert seqs == sorted(seqs)
    assert [e for _s, e in journal.pending(limit=2)] == events[:2]  # oldest first
    journal.mark_uploaded(seqs[:3])
    assert [e["event"] for _s, e in journal.pending(limit=10)] == ["e3", "e4"]
    # prune: only what was uploaded before the given time; the outbox is never pruned
    assert journal.prune(before="2000-01-01T00:00:00.000Z", uploaded_only=True) == 0
    future = to_rfc3339(datetime.now(timezone.utc) + timedelta(hours=1))
    assert journal.prune(before=future, uploaded_only=True) == 3
    assert [e["event"] for e in journal.events()] == ["e3", "e4"]
    assert [e["event"] for _s, e in journal.pending(limit=10)] == ["e3", "e4"]


def test_journal_mark_uploaded_of_nothing_is_fine(journal: Journal) -> None:
    journal.record("system", event="x")
    journal.mark_uploaded([])
    assert len(journal.pending(limit=10)) == 1


def test_journal_failed_mark_uploaded_does_not_hold_back_later_events(journal: Journal) -> None:
    first = journal.record("system", event="before")
    # any failure inside mark_uploaded (disk full, locked, a bad value: the last is the one
    # a test can cause) must not leave the connection inside an open transaction
    with pytest.raises(sqlite3.Error):
        journal.mark_uploaded([object()])  # type: ignore[list-item]
    later = journal.record("door", state="unlocked")
    with sqlite3.connect(journal.path) as other:  # committed, so visible elsewhere at once
        ids = [r[0] for r in other.execute("SELECT id FROM events ORDER BY seq")]
    assert ids == [first["id"], later["id"]]
    assert [e["id"] for _s, e in journal.pending(limit=10)] == ids  # nothing marked


def test_journal_committed_event_is_seen_by_another_connection_at_once(journal: Journal) -> None:
    event = journal.record("door", state="unlocked")
    # a plain second connection, no checkpoint, no close of the writer
    with sqlite3.connect(journal.path) as other:
        rows = other.execute("SELECT id, body FROM events").fetchall()
    assert [(r[0], json.loads(r[1])) for r in rows] == [(event["id"], event)]


def test_journal_committed_event_is_seen_by_another_process(journal: Journal) -> None:
    first = journal.record("decision", verdict="grant", reason="ok", source="list")
    reader = textwrap.dedent(f"""
        import json
        from pathlib import Path
        from gate.journal import Journal
        j = Journal(Path({str(journal.path)!r}), "reader")
        print(json.dumps([e["id"] for e in j.events()]))
        j.close()
    """)
    out = subprocess.run([sys.executable, "-c", reader], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [first["id"]]
    second = journal.record("door", state="locked")  # the writer goes on after the reader
    out = subprocess.run([sys.executable, "-c", reader], capture_output=True, text=True,
                         timeout=60)
    assert json.loads(out.stdout) == [first["id"], second["id"]]


def test_journal_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    j = Journal(path, "g1")
    event = j.record("system", event="started")
    j.close()
    again = Journal(path, "g1")
    try:
        assert list(again.events()) == [event]
        again.record("system", event="second run")
        assert len(list(again.events())) == 2
    finally:
        again.close()


def test_journal_concurrent_records_from_threads_are_all_kept(journal: Journal) -> None:
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def writer(n: int) -> None:
        try:
            start.wait(timeout=10)
            for i in range(40):
                journal.record("system", event="load", writer=n, i=i)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors
    events = list(journal.events())
    assert len(events) == 320 and len({e["id"] for e in events}) == 320
    for n in range(8):  # each writer's own events keep their order
        assert [e["i"] for e in events if e["writer"] == n] == list(range(40))


def test_journal_prune_everything_old_when_there_is_no_server(journal: Journal) -> None:
    for i in range(3):
        journal.record("system", event=f"e{i}")
    future = to_rfc3339(datetime.now(timezone.utc) + timedelta(hours=1))
    assert journal.prune(before="2000-01-01T00:00:00.000Z", uploaded_only=False) == 0
    assert journal.prune(before=future, uploaded_only=False) == 3
    assert list(journal.events()) == []


def test_journal_pruner_keeps_recent_events_and_the_outbox(journal: Journal) -> None:
    from gate.central.sync import JournalPruner
    journal.record("system", event="old")
    journal._db.execute("UPDATE events SET at = '2001-01-01T00:00:00.000Z'")
    journal.record("system", event="new")
    JournalPruner(journal, retention_days=30, uploaded_only=True).run_once()
    assert [e["event"] for e in journal.events()] == ["old", "new"]  # not uploaded: kept
    journal.mark_uploaded([seq for seq, _ in journal.pending(10)])
    assert JournalPruner(journal, retention_days=30, uploaded_only=True).run_once() == 3600.0
    assert [e["event"] for e in journal.events()] == ["new"]


# -- durability: which fsyncs happen, on which file ------------------------------------------

def _fsyncs_of_wal(monkeypatch: pytest.MonkeyPatch, journal: Journal) -> list[int]:
    """Record the inode of each file os.fsync is called on; return the live list."""
    import os
    synced: list[int] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        synced.append(os.fstat(fd).st_ino)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    return synced


def test_journal_record_fsyncs_the_wal_before_returning(
        journal: Journal, monkeypatch: pytest.MonkeyPatch) -> None:
    synced = _fsyncs_of_wal(monkeypatch, journal)
    journal.record("system", event="started")
    wal = Path(f"{journal.path}-wal")
    assert wal.stat().st_ino in synced  # the WAL file itself: what synchronous=FULL would sync


def test_journal_write_commits_without_fsync_and_sync_makes_it_durable(
        journal: Journal, monkeypatch: pytest.MonkeyPatch) -> None:
    synced = _fsyncs_of_wal(monkeypatch, journal)
    event = journal.write("decision", verdict="grant", reason="ok", source="list")
    # committed: another connection sees it at once (it survives this process dying) ...
    with sqlite3.connect(journal.path) as other:
        assert other.execute("SELECT id FROM events").fetchall() == [(event["id"],)]
    assert synced == []  # ... but no fsync yet: the door path moves the relay first
    journal.sync()
    assert Path(f"{journal.path}-wal").stat().st_ino in synced


def test_journal_sync_failure_is_a_journal_error(
        journal: Journal, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from gate.errors import JournalError
    journal.write("system", event="started")

    def failing_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(JournalError, match="fsync failed"):
        journal.sync()


def test_typed_events_serialise_in_declared_order_then_extra(journal: Journal) -> None:
    """One serialisation: envelope, kind, typed fields in order, then extra; the keyword
    form builds the same typed event."""
    typed = journal.record(DecisionEvent("deny", "lockdown", "remote", latency_ms=0.5,
                                         extra={"command_id": "c1"}))
    assert list(typed) == ["id", "at", "gate", "kind", "verdict", "reason", "source", "label",
                           "credential_id", "code_sha256", "latency_ms", "command_id"]
    assert event_of("alarm", {"alarm": "held_open", "event": "raised", "open_for_s": 3.0}) \
        == AlarmEvent("held_open", "raised", extra={"open_for_s": 3.0})
    stored = list(journal.events())[-1]
    assert stored == typed and as_fields(SystemEvent("x", extra={"a": 1})) == \
        {"kind": "system", "event": "x", "a": 1}


def test_an_extra_field_cannot_overwrite_the_envelope_or_a_typed_field() -> None:
    with pytest.raises(ValueError, match="'gate' is reserved"):
        SystemEvent("started", extra={"gate": "someone-else"})
    with pytest.raises(ValueError, match="'verdict' is reserved"):
        DecisionEvent("deny", "unknown", "none", extra={"verdict": "grant"})
    with pytest.raises(TypeError):
        event_of("decision", {"verdict": "grant", "reason": "ok"})  # no source
    with pytest.raises(TypeError, match="unknown journal event kind"):
        event_of("party", {})
