"""SQLite storage of the reference server: credentials with a change cursor, and events."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import re
import secrets
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from .timefmt import normalize_time, parse_time, utcnow

log = logging.getLogger(__name__)

# The server's own answer for each colour; the gate maps the colour again through its
# [policy.status] and applies the stricter of the two, so these are only the defaults.
STATUS_VERDICT: dict[str, str] = {"green": "grant", "yellow": "staff", "red": "deny", "black": "deny"}
COLOURS = tuple(STATUS_VERDICT)

_HEX64 = re.compile(r"[0-9a-f]{64}")
_CURSOR = re.compile(r"([0-9a-f]{8,32})-([0-9]{1,18})")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS state (
    one   INTEGER PRIMARY KEY CHECK (one = 1),
    epoch TEXT    NOT NULL,  -- random per database: a cursor from another database is unknown
    seq   INTEGER NOT NULL,  -- bumped by every change to credentials
    floor INTEGER NOT NULL   -- deltas are complete only for cursors at or after this seq
);
CREATE TABLE IF NOT EXISTS credentials (
    id          TEXT PRIMARY KEY,
    code_sha256 TEXT NOT NULL UNIQUE,  -- the raw code is never stored
    label       TEXT,
    valid_from  TEXT,
    valid_until TEXT,
    status      TEXT,
    open_s      REAL,
    revoked     INTEGER NOT NULL DEFAULT 0,
    seq         INTEGER NOT NULL,
    changed_at  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS credentials_seq ON credentials (seq);
CREATE TABLE IF NOT EXISTS events (
    n           INTEGER PRIMARY KEY AUTOINCREMENT,  -- arrival order
    id          TEXT NOT NULL UNIQUE,               -- the gate's event id: the idempotency key
    gate        TEXT NOT NULL,
    at          TEXT NOT NULL,
    kind        TEXT NOT NULL,
    body        TEXT NOT NULL,
    received_at TEXT NOT NULL
);
"""


def sha256_hex(code: str | bytes) -> str:
    """SHA-256 hex of the payload bytes (a str is its UTF-8): the only form a code is kept in."""
    return hashlib.sha256(code.encode("utf-8") if isinstance(code, str) else code).hexdigest()


@dataclass(frozen=True)
class Credential:
    """One enrolled code, as stored and as sent in /v1/credentials."""

    id: str
    code_sha256: str
    label: str | None = None
    valid_from: str | None = None
    valid_until: str | None = None
    status: str | None = None
    open_s: float | None = None
    revoked: bool = False
    seq: int = 0
    changed_at: str = ""

    def to_json(self) -> dict[str, Any]:
        """Wire form: optional fields are left out rather than sent as null."""
        out: dict[str, Any] = {"id": self.id, "code_sha256": self.code_sha256}
        for key in ("label", "valid_from", "valid_until", "status"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.revoked:
            out["revoked"] = True
        return out


@dataclass(frozen=True)
class Verdict:
    """The server's answer to one /v1/verify."""

    decision: str
    reason: str
    label: str | None = None
    open_s: float | None = None
    status: str | None = None
    credential_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"decision": self.decision, "reason": self.reason}
        for key in ("label", "open_s", "status", "credential_id"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out


@dataclass(frozen=True)
class CredentialsPage:
    """A /v1/credentials answer: the whole list (full) or the changes after `since`."""

    cursor: str
    full: bool
    credentials: list[Credential] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"cursor": self.cursor, "full": self.full,
                "credentials": [c.to_json() for c in self.credentials]}


@dataclass(frozen=True)
class IngestResult:
    """How many events of an upload were new and how many had been stored before; `accepted`
    is every id of the upload the server now holds (new or not)."""

    stored: int
    duplicates: int
    accepted: tuple[str, ...] = ()


@dataclass(frozen=True)
class StoredEvent:
    """An uploaded event with what the server knows about its arrival."""

    gate: str
    received_at: str
    event: dict[str, Any]


def _row_to_credential(row: sqlite3.Row) -> Credential:
    return Credential(id=row["id"], code_sha256=row["code_sha256"], label=row["label"],
                      valid_from=row["valid_from"], valid_until=row["valid_until"],
                      status=row["status"], open_s=row["open_s"], revoked=bool(row["revoked"]),
                      seq=row["seq"], changed_at=row["changed_at"])


def _resolve_hash(code: str | None, code_sha256: str | None) -> str:
    """Exactly one of code / code_sha256, returned as lowercase SHA-256 hex."""
    if (code is None) == (code_sha256 is None):
        raise ValueError("give either a code or its code_sha256, not both or neither")
    if code is not None:
        if not isinstance(code, str) or not code:
            raise ValueError("code must be a non-empty string")
        return sha256_hex(code)
    digest = str(code_sha256).strip().lower()
    if not _HEX64.fullmatch(digest):
        raise ValueError("code_sha256 must be 64 hexadecimal characters")
    return digest


class Store:
    """The reference server's SQLite file. Safe to use from many threads and processes.

    Each operation opens its own short-lived connection: the HTTP server is threaded and
    the technician's CLI (enrol, revoke) may write while `serve` runs, so nothing is shared.
    """

    def __init__(self, path: str | Path, clock: Callable[[], datetime] = utcnow) -> None:
        self.path = Path(path)
        self.clock = clock
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as conn:
            # WAL lets readers (verify, credentials) run while a writer holds the lock.
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(_SCHEMA)
            conn.execute("INSERT OR IGNORE INTO state (one, epoch, seq, floor) VALUES (1, ?, 0, 0)",
                         (secrets.token_hex(4),))

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=10.0, isolation_level=None)
        try:
            conn.row_factory = sqlite3.Row
            # FULL: a 2xx to an event upload promises the events survive a power cut.
            conn.execute("PRAGMA synchronous=FULL")
            yield conn
        finally:
            conn.close()

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction; IMMEDIATE so two writers never both read the same seq."""
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    @staticmethod
    def _bump(conn: sqlite3.Connection) -> int:
        return int(conn.execute("UPDATE state SET seq = seq + 1 RETURNING seq").fetchone()[0])

    def _now(self) -> str:
        return normalize_time(self.clock()) or ""

    # -- credentials ---------------------------------------------------------------------

    def enrol(self, code: str | None = None, *, code_sha256: str | None = None,
              label: str | None = None, valid_from: datetime | str | None = None,
              valid_until: datetime | str | None = None, status: str | None = None,
              open_s: float | None = None) -> Credential:
        """Add a code, or replace the settings of an enrolled one (which also un-revokes it)."""
        digest = _resolve_hash(code, code_sha256)
        start = normalize_time(valid_from, "valid_from")
        end = normalize_time(valid_until, "valid_until")
        if start and end and parse_time(start) >= parse_time(end):
            raise ValueError("valid_from must be before valid_until")
        if status is not None and status not in COLOURS:
            raise ValueError(f"status must be one of {', '.join(COLOURS)}, got {status!r}")
        if label is not None and not isinstance(label, str):
            raise ValueError("label must be a string")
        if open_s is not None:
            open_s = float(open_s)
            if not math.isfinite(open_s) or not 0 < open_s <= 600:
                raise ValueError("open_s must be a number of seconds in (0, 600]")
        with self._write() as conn:
            seq = self._bump(conn)
            conn.execute(
                """INSERT INTO credentials (id, code_sha256, label, valid_from, valid_until,
                                            status, open_s, revoked, seq, changed_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?)
                   ON CONFLICT (code_sha256) DO UPDATE SET
                       label = excluded.label, valid_from = excluded.valid_from,
                       valid_until = excluded.valid_until, status = excluded.status,
                       open_s = excluded.open_s, revoked = 0, seq = excluded.seq,
                       changed_at = excluded.changed_at""",
                ("c_" + secrets.token_hex(8), digest, label, start, end, status, open_s, seq,
                 self._now()))
            row = conn.execute("SELECT * FROM credentials WHERE code_sha256 = ?", (digest,)).fetchone()
        log.info("enrolled credential %s (sha256 %s..., seq %d)", row["id"], digest[:12], seq)
        return _row_to_credential(row)

    def revoke(self, code: str | None = None, *, code_sha256: str | None = None) -> bool:
        """Revoke a code. False if it is not enrolled or already revoked (nothing changes)."""
        digest = _resolve_hash(code, code_sha256)
        with self._write() as conn:
            row = conn.execute("SELECT revoked FROM credentials WHERE code_sha256 = ?",
                               (digest,)).fetchone()
            if row is None or row["revoked"]:
                return False
            # The row stays as a tombstone so delta syncs can tell gates to drop it.
            seq = self._bump(conn)
            conn.execute("UPDATE credentials SET revoked = 1, seq = ?, changed_at = ? "
                         "WHERE code_sha256 = ?", (seq, self._now(), digest))
        log.info("revoked credential sha256 %s... (seq %d)", digest[:12], seq)
        return True

    def get(self, code: str | None = None, *, code_sha256: str | None = None) -> Credential | None:
        digest = _resolve_hash(code, code_sha256)
        with self._connect() as conn:
            row = conn.execute("SELECT * FROM credentials WHERE code_sha256 = ?", (digest,)).fetchone()
        return _row_to_credential(row) if row else None

    def credentials(self, include_revoked: bool = False) -> list[Credential]:
        where = "" if include_revoked else "WHERE revoked = 0"
        with self._connect() as conn:
            rows = conn.execute(f"SELECT * FROM credentials {where} ORDER BY seq").fetchall()
        return [_row_to_credential(r) for r in rows]

    def cursor(self) -> str:
        with self._connect() as conn:
            state = conn.execute("SELECT epoch, seq FROM state").fetchone()
        return f"{state['epoch']}-{state['seq']}"

    def credentials_page(self, since: str | None = None) -> CredentialsPage:
        """Changes after cursor `since`, or the whole list when `since` cannot be honoured."""
        with self._connect() as conn:
            conn.execute("BEGIN")  # one snapshot: the cursor must match the rows sent with it
            state = conn.execute("SELECT epoch, seq, floor FROM state").fetchone()
            cursor = f"{state['epoch']}-{state['seq']}"
            since_seq: int | None = None
            match = _CURSOR.fullmatch(since or "")
            if match and match.group(1) == state["epoch"]:
                since_seq = int(match.group(2))
            # A cursor from another database, from the future or from before a compaction
            # cannot be answered with a delta: the gate gets the whole list instead.
            if since_seq is None or not state["floor"] <= since_seq <= state["seq"]:
                rows = conn.execute("SELECT * FROM credentials WHERE revoked = 0 ORDER BY seq")
                page = CredentialsPage(cursor, True, [_row_to_credential(r) for r in rows])
            else:
                rows = conn.execute("SELECT * FROM credentials WHERE seq > ? ORDER BY seq",
                                    (since_seq,))
                page = CredentialsPage(cursor, False, [_row_to_credential(r) for r in rows])
            conn.execute("COMMIT")
        return page

    def compact(self) -> int:
        """Delete revoked tombstones; every older cursor then gets a full list. Returns count."""
        with self._write() as conn:
            removed = conn.execute("DELETE FROM credentials WHERE revoked = 1").rowcount
            # Bump so the ETag of every (gate, cursor, since) changes and no stale 304 is sent.
            seq = self._bump(conn)
            conn.execute("UPDATE state SET floor = ?", (seq,))
        log.info("compacted %d revoked credentials; deltas now start at seq %d", removed, seq)
        return removed

    # -- verification --------------------------------------------------------------------

    def verify(self, code: str | bytes) -> Verdict:
        """Decide on a presented code now, by the server's clock."""
        digest = sha256_hex(code)
        with self._connect() as conn:
            row = conn.execute("SELECT * FROM credentials WHERE code_sha256 = ?", (digest,)).fetchone()
        if row is None:
            return Verdict("deny", "unknown")
        cred = _row_to_credential(row)

        def deny(reason: str) -> Verdict:
            return Verdict("deny", reason, cred.label, None, cred.status, cred.id)

        now = self.clock()
        if cred.revoked:
            return deny("revoked")
        if cred.valid_from and now < parse_time(cred.valid_from):
            return deny("not_yet_valid")
        if cred.valid_until and now >= parse_time(cred.valid_until):
            return deny("expired")
        decision = STATUS_VERDICT[cred.status] if cred.status else "grant"
        if decision == "deny":
            return deny(f"status_{cred.status}")
        reason = f"status_{cred.status}" if decision == "staff" else "ok"
        # The door time only matters when the door opens.
        open_s = cred.open_s if decision == "grant" else None
        return Verdict(decision, reason, cred.label, open_s, cred.status, cred.id)

    # -- events --------------------------------------------------------------------------

    def ingest_events(self, gate: str, events: list[dict[str, Any]]) -> IngestResult:
        """Store a batch in one transaction; an event id seen before is skipped, not an error."""
        stored = 0
        received = self._now()
        with self._write() as conn:
            for event in events:
                cur = conn.execute(
                    "INSERT OR IGNORE INTO events (id, gate, at, kind, body, received_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (event["id"], gate, event["at"], event["kind"],
                     json.dumps(event, sort_keys=True, separators=(",", ":")), received))
                stored += cur.rowcount
        result = IngestResult(stored, len(events) - stored,
                              tuple(dict.fromkeys(str(e["id"]) for e in events)))
        log.info("events from gate %s: %d stored, %d duplicates", gate, result.stored,
                 result.duplicates)
        return result

    def events(self, gate: str | None = None) -> list[dict[str, Any]]:
        """Stored events in arrival order, each exactly as the gate sent it."""
        return [record.event for record in self.event_records(gate)]

    def event_records(self, gate: str | None = None) -> list[StoredEvent]:
        """Stored events in arrival order, with the uploading gate and the arrival time."""
        query = "SELECT gate, received_at, body FROM events"
        args: tuple[str, ...] = ()
        if gate is not None:
            query, args = query + " WHERE gate = ?", (gate,)
        with self._connect() as conn:
            rows = conn.execute(query + " ORDER BY n", args).fetchall()
        return [StoredEvent(r["gate"], r["received_at"], json.loads(r["body"])) for r in rows]
