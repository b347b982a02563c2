"""The journal: an append-only SQLite (WAL) event log that is both the audit trail and the
outbox for upload. Each event is committed and fsynced before `record` returns; the door
path writes first and fsyncs right after the relay command (`write` + `sync`)."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, ClassVar, Literal

from .contracts import Source, Verdict
from .errors import JournalError

log = logging.getLogger(__name__)

EventKind = Literal["decision", "door", "alarm", "system"]
ENVELOPE = ("id", "at", "gate", "kind")  # every event's first keys, written by the journal


@dataclass(frozen=True)
class _Event:
    """Fields shared by every event: `extra` holds the optional ones a particular event
    carries (pass_id, command_id, open_for_s, camera...), written after the typed fields."""

    kind: ClassVar[EventKind]
    extra: Mapping[str, Any] = field(default_factory=dict, kw_only=True)

    def __post_init__(self) -> None:
        typed = {f.name for f in fields(self)}
        clash = [k for k in self.extra if k in typed or k in ENVELOPE]
        if clash:
            raise ValueError(f"{self.kind} event: extra field {clash[0]!r} is reserved")


@dataclass(frozen=True)
class DecisionEvent(_Event):
    """A verdict on a code, a button or a command; `reason` may be the server's own word."""

    kind: ClassVar[EventKind] = "decision"
    verdict: Verdict
    reason: str
    source: Source
    label: str = ""
    credential_id: str | None = None
    code_sha256: str | None = None
    latency_ms: float | None = None


@dataclass(frozen=True)
class DoorEvent(_Event):
    """The relay (unlocked|locked) or the door contact (open|closed) changed."""

    kind: ClassVar[EventKind] = "door"
    state: str


@dataclass(frozen=True)
class AlarmEvent(_Event):
    """An alarm (held_open, forced_open, lockout, occupancy_full...) raised or cleared."""

    kind: ClassVar[EventKind] = "alarm"
    alarm: str
    event: Literal["raised", "cleared"]


@dataclass(frozen=True)
class SystemEvent(_Event):
    """The daemon's life: started, stopped, reloaded, list_loaded, error, test_relay..."""

    kind: ClassVar[EventKind] = "system"
    event: str


Event = DecisionEvent | DoorEvent | AlarmEvent | SystemEvent
EVENT_TYPES: dict[str, type[Event]] = {
    t.kind: t for t in (DecisionEvent, DoorEvent, AlarmEvent, SystemEvent)}


def as_fields(event: Event) -> dict[str, Any]:
    """The one serialisation of an event (without the envelope): `kind`, the typed fields in
    their declared order, then `extra` in its own order."""
    out: dict[str, Any] = {"kind": event.kind}
    for f in fields(event):
        if f.name != "extra":
            out[f.name] = getattr(event, f.name)
    out.update(event.extra)
    return out


def event_of(kind: str, values: Mapping[str, Any]) -> Event:
    """The event for `kind` from keyword values: the typed fields by name, the rest `extra`
    (TypeError for an unknown kind or a missing typed field)."""
    cls = EVENT_TYPES.get(kind)
    if cls is None:
        raise TypeError(f"unknown journal event kind {kind!r}")
    typed = {f.name for f in fields(cls)} - {"extra"}
    return cls(**{k: v for k, v in values.items() if k in typed},
               extra={k: v for k, v in values.items() if k not in typed})

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT NOT NULL UNIQUE,
    at          TEXT NOT NULL,
    kind        TEXT NOT NULL,
    body        TEXT NOT NULL,
    uploaded_at TEXT
);
CREATE INDEX IF NOT EXISTS events_at ON events (at);
CREATE INDEX IF NOT EXISTS events_pending ON events (seq) WHERE uploaded_at IS NULL;
-- Events the server refuses on their own (a 400 for a batch of one): out of the outbox, kept
-- here with their body for good (never pruned), counted in `gate status`.
CREATE TABLE IF NOT EXISTS dead_letters (
    id          TEXT PRIMARY KEY,
    seq         INTEGER NOT NULL,
    set_aside_at TEXT NOT NULL,
    reason      TEXT NOT NULL,
    body        TEXT NOT NULL
);
"""


def utc_now(epoch: float | None = None) -> str:
    """RFC 3339 UTC with milliseconds, e.g. 2026-11-25T19:04:25.123Z (sorts as text): now, or
    the time `epoch` (seconds since 1970)."""
    when = datetime.now(timezone.utc) if epoch is None else datetime.fromtimestamp(epoch,
                                                                                  timezone.utc)
    return to_rfc3339(when)


def to_rfc3339(when: datetime) -> str:
    if when.tzinfo is None:
        when = when.astimezone()  # a naive time is the gate's local time
    return when.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Journal:
    """Thread-safe: the frame loop, the door timer and background workers all record here."""

    def __init__(self, path: Path, gate_id: str) -> None:
        self.path = path
        self.gate_id = gate_id
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                                   timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL: a commit is written to the WAL (so it survives a crash or kill of this
        # process, and a full disk fails it) without an fsync; `sync` fsyncs the WAL itself,
        # which makes every commit so far survive power loss, as synchronous=FULL would. This
        # lets the door path commit its decision before the relay moves and pay for the fsync
        # just after (see `write`).
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._wal = Path(f"{path}-wal")
        self._db.executescript(SCHEMA)
        self._subscribers: list[Callable[[dict[str, Any]], None]] = []

    def subscribe(self, subscriber: Callable[[dict[str, Any]], None]) -> None:
        """Call `subscriber(event)` after each event is committed, on the recording thread:
        it must not block (metrics, MQTT queue); an exception in it is logged, not raised."""
        self._subscribers.append(subscriber)

    def record(self, event: Event | EventKind, /, **values: Any) -> dict[str, Any]:
        """Append one event, committed and fsynced, and return it as `gate journal --json`
        prints it; JournalError if it could not be committed (then it is not in the journal).
        `record(kind, **values)` is short for `record(event_of(kind, values))`."""
        written = self.write(event, **values)
        self.sync()
        return written

    def write(self, event: Event | EventKind, /, **values: Any) -> dict[str, Any]:
        """Append one event, committed but not yet fsynced: it survives the process dying,
        not yet a power cut, until `sync()` (or any later `record`). JournalError if it could
        not be committed (disk full, read-only, I/O error): then it is not in the journal."""
        typed = event_of(event, values) if isinstance(event, str) else event
        kind = typed.kind
        out = {"id": str(uuid.uuid4()), "at": utc_now(), "gate": self.gate_id,
                 **as_fields(typed)}
        body = json.dumps(out, separators=(",", ":"), sort_keys=False)
        try:
            with self._lock:
                # autocommit: this one statement is its own transaction; on error nothing is
                # left half-open
                self._db.execute("INSERT INTO events (id, at, kind, body) VALUES (?, ?, ?, ?)",
                                 (out["id"], out["at"], kind, body))
        except (sqlite3.Error, ValueError) as exc:  # full, read-only, I/O error, closed
            raise JournalError(f"journal {self.path}: {kind} event not recorded: {exc}") from exc
        for subscriber in self._subscribers:  # after the commit: the event is in the journal
            try:
                subscriber(out)
            except Exception:
                log.exception("journal: a subscriber failed on a %s event", kind)
        return out

    def sync(self) -> None:
        """fsync the WAL: every event committed so far survives power loss. JournalError if
        the file cannot be synced. (fsync flushes the file, whichever descriptor wrote it.)"""
        try:
            with self._lock:
                fd = os.open(self._wal, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
        except FileNotFoundError:
            return  # no WAL: everything is checkpointed into the database file, fsynced then
        except OSError as exc:
            raise JournalError(f"journal {self.path}: fsync failed: {exc}") from exc

    def pending_count(self) -> int:
        """How many events wait for upload (the outbox)."""
        with self._lock:
            (n,) = self._db.execute(
                "SELECT COUNT(*) FROM events WHERE uploaded_at IS NULL").fetchone()
        return int(n)

    def events(self, since: str | None = None, kind: str | None = None) -> Iterator[dict[str, Any]]:
        """Events in the order they were recorded; `since` is an RFC 3339 UTC time."""
        sql, args = "SELECT body FROM events WHERE 1=1", []
        if since:
            sql += " AND at >= ?"
            args.append(since)
        if kind:
            sql += " AND kind = ?"
            args.append(kind)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY seq", args).fetchall()
        for (body,) in rows:
            yield json.loads(body)

    def pending(self, limit: int) -> list[tuple[int, dict[str, Any]]]:
        """The oldest events not yet uploaded nor set aside, with their sequence numbers."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, body FROM events WHERE uploaded_at IS NULL AND NOT EXISTS "
                "(SELECT 1 FROM dead_letters d WHERE d.id = events.id) ORDER BY seq LIMIT ?",
                (limit,)).fetchall()
        return [(seq, json.loads(body)) for seq, body in rows]

    def mark_uploaded(self, seqs: list[int]) -> None:
        now = utc_now()
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.executemany("UPDATE events SET uploaded_at = ? WHERE seq = ?",
                                     [(now, s) for s in seqs])
                self._db.execute("COMMIT")
            except BaseException:  # else every later record() lands in this open transaction
                self._db.execute("ROLLBACK")
                raise

    def set_aside(self, seqs: list[int], reason: str) -> None:
        """Move events out of the outbox into the dead-letter table (a copy of each body is
        kept there, so pruning the events table never loses one)."""
        now = utc_now()
        with self._lock:
            self._db.executemany(
                "INSERT OR IGNORE INTO dead_letters (id, seq, set_aside_at, reason, body) "
                "SELECT id, seq, ?, ?, body FROM events WHERE seq = ?",
                [(now, reason, s) for s in seqs])

    def dead_letters(self) -> list[dict[str, Any]]:
        """Set-aside events, oldest first, each with `set_aside_at` and `reason`."""
        with self._lock:
            rows = self._db.execute("SELECT set_aside_at, reason, body FROM dead_letters "
                                    "ORDER BY seq").fetchall()
        return [{"event": json.loads(body), "set_aside_at": at, "reason": reason}
                for at, reason, body in rows]

    def dead_letter_count(self) -> int:
        with self._lock:
            (n,) = self._db.execute("SELECT COUNT(*) FROM dead_letters").fetchone()
        return int(n)

    def prune(self, before: str, uploaded_only: bool) -> int:
        """Delete events that happened before `before`; with `uploaded_only`, only those
        already uploaded (the outbox is never pruned)."""
        sql = "DELETE FROM events WHERE at < ?"
        if uploaded_only:
            sql += " AND uploaded_at IS NOT NULL"
        with self._lock:
            cur = self._db.execute(sql, (before,))
        return cur.rowcount

    def close(self) -> None:
        with self._lock:
            self._db.close()
