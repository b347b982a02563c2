"""The credential store (SQLite, codes only as SHA-256) and the technician's allowlist CSV."""

from __future__ import annotations

import contextlib
import csv
import difflib
import functools
import hashlib
import logging
import os
import re
import sqlite3
import stat
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path

from ..errors import AllowlistError

log = logging.getLogger(__name__)

LIST = "list"      # rows from the technician's allowlist file
SERVER = "server"  # rows synced from the central server
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")

SCHEMA = """
CREATE TABLE IF NOT EXISTS credentials (
    code_sha256 TEXT NOT NULL,
    origin      TEXT NOT NULL,
    cred_id     TEXT,
    label       TEXT NOT NULL DEFAULT '',
    valid_from  REAL,
    valid_until REAL,
    revoked     INTEGER NOT NULL DEFAULT 0,
    status      TEXT,
    PRIMARY KEY (code_sha256, origin)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


_INTO = ("INTO credentials (code_sha256, origin, cred_id, label, valid_from, valid_until, "
         "revoked, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
UPSERT = "INSERT OR REPLACE " + _INTO     # a newer row for the same code wins
INSERT_NEW = "INSERT OR IGNORE " + _INTO  # a code already there is left alone (rowcount 0)


@dataclass(frozen=True)
class Credential:
    """One pass: who it is for and when it is valid (epoch seconds; None means unbounded)."""

    code_sha256: str
    origin: str = LIST
    cred_id: str | None = None
    label: str = ""
    valid_from: float | None = None
    valid_until: float | None = None
    revoked: bool = False
    status: str | None = None  # the server's colour (green, yellow...), mapped by [policy.status]


def _row(origin: str, c: Credential) -> tuple[object, ...]:
    return (c.code_sha256, origin, c.cred_id, c.label, c.valid_from, c.valid_until,
            int(c.revoked), c.status)


def hash_code(code: str | bytes) -> str:
    data = code.encode("utf-8") if isinstance(code, str) else code
    return hashlib.sha256(data).hexdigest()


class CredentialStore:
    """SQLite file in the state dir; each thread gets its own connection (WAL lets them mix)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db.executescript(SCHEMA)

    @property
    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            self._local.db = db
        return db

    def lookup(self, code_sha256: str, origin: str) -> Credential | None:
        row = self._db.execute(
            "SELECT code_sha256, origin, cred_id, label, valid_from, valid_until, revoked, status "
            "FROM credentials WHERE code_sha256 = ? AND origin = ?",
            (code_sha256, origin)).fetchone()
        if row is None:
            return None
        sha, origin_, cred_id, label, valid_from, valid_until, revoked, status = row
        return Credential(sha, origin_, cred_id, label, valid_from, valid_until, bool(revoked),
                          status)

    def count(self, origin: str) -> int:
        return int(self._db.execute(
            "SELECT count(*) FROM credentials WHERE origin = ?", (origin,)).fetchone()[0])

    @contextlib.contextmanager
    def _transaction(self, big: bool = False) -> Iterator[sqlite3.Connection]:
        """One write transaction: committed whole or rolled back whole (also on kill -9,
        by SQLite's journal). `big` gives it a 32 MiB page cache, so that random-key inserts
        of a large list mostly stay in memory."""
        db = self._db
        if big:
            db.execute("PRAGMA cache_size = -32768")
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        finally:
            if big:
                db.execute("PRAGMA cache_size = -2000")  # back to SQLite's default

    def replace(self, origin: str, creds: Iterable[Credential],
                meta: dict[str, str] | None = None) -> int:
        """Swap every row of `origin` for `creds` in one transaction: all or nothing."""
        with self._transaction(big=True) as db:
            db.execute("DELETE FROM credentials WHERE origin = ?", (origin,))
            n = self._insert(db, origin, creds)
            self._write_meta(db, meta)
        return n

    def replace_unique(self, origin: str, rows: Iterable[tuple[int, Credential]],
                       on_duplicate: Callable[[int], None]) -> int:
        """Like replace(), from (line, credential) pairs; a code already inserted is reported
        through `on_duplicate(line)` and skipped. One transaction: all or nothing."""
        n = 0
        with self._transaction(big=True) as db:
            db.execute("DELETE FROM credentials WHERE origin = ?", (origin,))
            for line, c in rows:
                cur = db.execute(INSERT_NEW, _row(origin, c))
                if cur.rowcount:
                    n += 1
                else:
                    on_duplicate(line)
        return n

    def upsert(self, origin: str, creds: Iterable[Credential],
               meta: dict[str, str] | None = None) -> int:
        """Insert or update rows of `origin` (a delta) in one transaction."""
        with self._transaction() as db:
            n = self._insert(db, origin, creds)
            self._write_meta(db, meta)
        return n

    def get_meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, meta: dict[str, str]) -> None:
        self._write_meta(self._db, meta)

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    @staticmethod
    def _insert(db: sqlite3.Connection, origin: str, creds: Iterable[Credential]) -> int:
        cur = db.executemany(UPSERT, (_row(origin, c) for c in creds))
        return max(cur.rowcount, 0)

    @staticmethod
    def _write_meta(db: sqlite3.Connection, meta: dict[str, str] | None) -> None:
        if meta:
            db.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                           meta.items())


COLUMNS = ("code", "code_sha256", "label", "valid_from", "valid_until")
MAX_CODE_CHARS = 7089    # the most a QR code holds (version 40, numeric)
MAX_LABEL_CHARS = 256
MAX_FIELD_CHARS = 8192   # csv's own field limit (128 KiB by default) would let far more in
MAX_PROBLEMS = 100       # reported one by one; the rest are only counted
_DATE_LIKE = re.compile(r"^[0-9TtZz:+\-. ]{1,40}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class Problems:
    """The "file:line: problem" of each skipped row: the first MAX_PROBLEMS kept, the rest
    counted, so a file of a million bad rows cannot fill the memory or the log."""

    def __init__(self) -> None:
        self.shown: list[str] = []
        self.total = 0

    def add(self, problem: str) -> None:
        self.total += 1
        if len(self.shown) < MAX_PROBLEMS:
            self.shown.append(problem)

    def summary(self) -> list[str]:
        more = self.total - len(self.shown)
        return self.shown + ([f"... and {more} more problems"] if more else [])


@dataclass(frozen=True)
class AllowlistLoad:
    credentials: list[Credential]
    problems: list[str]  # "file:line: problem" for each skipped row (at most MAX_PROBLEMS + 1)


def read_allowlist(path: Path) -> AllowlistLoad:
    """Parse the allowlist CSV into memory. Bad rows are reported and skipped; a bad file
    raises AllowlistError. (The daemon streams instead: see load_allowlist_into.)"""
    problems = Problems()
    creds: dict[str, Credential] = {}
    for line, cred in iter_allowlist(path, problems):
        if cred.code_sha256 in creds:
            problems.add(duplicate_problem(path, line))
        else:
            creds[cred.code_sha256] = cred
    return AllowlistLoad(list(creds.values()), problems.summary())


def duplicate_problem(path: Path, line: int) -> str:
    return f"{path}:{line}: the same code is listed again; row skipped"


def iter_allowlist(path: Path, problems: Problems) -> Iterator[tuple[int, Credential]]:
    """(line, credential) for each good row; bad rows are added to `problems`. Duplicates
    are left to the caller. A missing, unreadable, non-UTF-8 file or a bad header raises."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # a FIFO would block, a device never end
            raise AllowlistError(f"{path}: not a regular file")
        with path.open(newline="", encoding="utf-8-sig") as f:
            yield from _parse_rows(path, csv.reader(f), problems)
    except FileNotFoundError:
        raise AllowlistError(f"{path}: allowlist file not found") from None
    except UnicodeDecodeError:
        raise AllowlistError(f"{path}: cannot read allowlist: not UTF-8 text") from None
    except (OSError, csv.Error) as exc:
        raise AllowlistError(f"{path}: cannot read allowlist: {exc}") from None


def _parse_rows(path: Path, reader: Iterator[list[str]], problems: Problems
                ) -> Iterator[tuple[int, Credential]]:
    header = next(reader, None)
    if header is None:
        raise AllowlistError(f"{path}: empty file, expected a header line "
                             "code,label,valid_from,valid_until")
    cols = _check_header(path, header)
    width = len(cols)
    for row in reader:
        line = reader.line_num  # type: ignore[attr-defined]
        if not row or row[0].lstrip().startswith("#") or not any(c.strip() for c in row):
            continue
        try:
            if len(row) != width:  # a missing valid_until must not read as "never expires"
                raise ValueError(f"{len(row)} fields where the header has {width}")
            cred = _credential_from(dict(zip(cols, map(str.strip, row))))
        except ValueError as exc:
            problems.add(f"{path}:{line}: {exc}; row skipped")
            continue
        yield line, cred


def _check_header(path: Path, header: list[str]) -> list[str]:
    """The header's column names; any column the gate does not know refuses the whole file:
    a misspelt `valid_till` ignored would turn an expired pass into a grant."""
    cols = [h.strip().lower() for h in header]
    for i, col in enumerate(cols, 1):
        if col in COLUMNS:
            if cols.index(col) != i - 1:
                raise AllowlistError(f"{path}:1: column {col!r} appears twice")
            continue
        # Never echo an unknown name: a file without its header line has a code there.
        near = difflib.get_close_matches(col, COLUMNS, n=1, cutoff=0.6) if len(col) < 40 else []
        hint = (f"did you mean {near[0]!r}?" if near else
                "is the header line missing?")
        raise AllowlistError(f"{path}:1: column {i} is not one of {', '.join(COLUMNS)} "
                             f"({hint}); the file is refused")
    if ("code" in cols) == ("code_sha256" in cols):
        raise AllowlistError(f"{path}:1: the header needs exactly one of the columns "
                             f"'code' or 'code_sha256', got {','.join(cols)}")
    return cols


def _credential_from(cells: dict[str, str]) -> Credential:
    for name, value in cells.items():
        if len(value) > MAX_FIELD_CHARS:
            raise ValueError(f"{name}: longer than {MAX_FIELD_CHARS} characters")
        if "\x00" in value:
            raise ValueError(f"{name}: contains a NUL character")
    if "code" in cells:
        if not cells["code"]:
            raise ValueError("empty code")
        if len(cells["code"]) > MAX_CODE_CHARS:
            raise ValueError(f"code: longer than a QR code can hold ({MAX_CODE_CHARS})")
        sha = hash_code(cells["code"])
    else:
        sha = cells["code_sha256"].lower()
        if not SHA256_HEX.match(sha):
            raise ValueError("code_sha256 must be 64 hexadecimal digits")
    label = cells.get("label", "")
    if len(label) > MAX_LABEL_CHARS:
        raise ValueError(f"label: longer than {MAX_LABEL_CHARS} characters")
    if _CONTROL.search(label):
        raise ValueError("label: contains a control character")
    valid_from = parse_list_time(cells.get("valid_from", ""), end_of_day=False)
    valid_until = parse_list_time(cells.get("valid_until", ""), end_of_day=True)
    if valid_from is not None and valid_until is not None and valid_until <= valid_from:
        raise ValueError("valid_until is not after valid_from")
    return Credential(code_sha256=sha, origin=LIST, label=label,
                      valid_from=valid_from, valid_until=valid_until)


@functools.lru_cache(maxsize=4096)  # real lists repeat the same few dates many times
def parse_list_time(text: str, *, end_of_day: bool) -> float | None:
    """ISO 8601 date or date-time to epoch seconds; empty means unbounded.

    A time without an offset is the gate's local time; a bare date covers the whole day,
    so `valid_until = 2026-12-31` is valid until that day's end, and `9999-12-31` (a common
    "never expires") until the end of year 9999. Any out-of-range value raises ValueError.
    """
    if not text:
        return None
    shown = repr(text) if _DATE_LIKE.match(text) else "the value"  # never echo a stray code
    try:
        if len(text) == 10:
            d = date.fromisoformat(text)
            start = _timestamp(datetime.combine(d, dtime()))
            if not end_of_day:
                return start
            if d == date.max:  # there is no next day to start; DST never falls on it
                return start + 86400.0
            return _timestamp(datetime.combine(d + timedelta(days=1), dtime()))
        return _timestamp(datetime.fromisoformat(text))
    except (ValueError, OverflowError):
        raise ValueError(f"{shown} is not an ISO 8601 date or date-time within years "
                         "1..9999") from None


def _timestamp(dt: datetime) -> float:
    """Epoch seconds; a naive datetime is local time. Python's own local conversion fails
    within a day of years 1 and 9999 (it steps past them looking for the offset), so there
    the offset of the same day in an in-range leap year is used."""
    try:
        return dt.timestamp()
    except (OverflowError, ValueError, OSError):
        if dt.tzinfo is not None:
            raise
    probe = dt.replace(year=min(max(dt.year, 4), 9996))  # leap years: Feb 29 maps too
    offset = probe.astimezone().utcoffset() or timedelta()
    return (dt - datetime(1970, 1, 1)).total_seconds() - offset.total_seconds()


@dataclass(frozen=True)
class ListLoaded:
    count: int           # credentials now in the store from the list
    problems: list[str]  # "file:line: problem" for each skipped row (the first MAX_PROBLEMS)
    problem_count: int = 0  # every skipped row, also those not listed


def load_allowlist_into(store: CredentialStore, path: Path) -> ListLoaded:
    """Stream the allowlist into the store, replacing its list rows in one transaction.

    Rows go from the CSV reader straight to SQLite (which also finds duplicates), so a
    list of a million codes never sits in memory. A file that fails half-way leaves the
    previous list whole."""
    problems = Problems()
    count = store.replace_unique(LIST, iter_allowlist(path, problems),
                                 lambda line: problems.add(duplicate_problem(path, line)))
    return ListLoaded(count, problems.summary(), problems.total)
