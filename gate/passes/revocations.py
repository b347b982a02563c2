"""The revoked pass ids, in SQLite: a set with a sync cursor, replaced atomically or
updated by delta. Lookups run on the door path from any thread while a sync writes."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS revoked (pass_id BLOB PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS revocation_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
CURSOR_KEY = "cursor"


class RevocationStore:
    """``revoked(pass_id)`` answers from a per-thread reader connection, so a long sync
    (its own writer connection, one transaction) never blocks the door: WAL lets readers
    see the last committed set until the new one commits whole."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._writer = self._connect()
        with self._writer:
            self._writer.executescript(SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a commit survives a crash
        return conn

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    def revoked(self, pass_id: bytes) -> bool:
        row = self._reader().execute("SELECT 1 FROM revoked WHERE pass_id = ?",
                                     (pass_id,)).fetchone()
        return row is not None

    @property
    def cursor(self) -> str | None:
        row = self._reader().execute("SELECT value FROM revocation_meta WHERE key = ?",
                                     (CURSOR_KEY,)).fetchone()
        return None if row is None else str(row[0])

    def count(self) -> int:
        return int(self._reader().execute("SELECT count(*) FROM revoked").fetchone()[0])

    def replace(self, pass_ids: Iterable[bytes], cursor: str) -> None:
        """The whole set from a full sync: the old one stays visible until this commits."""
        self._write(_clear, pass_ids, (), cursor)

    def update(self, revoked: Iterable[bytes], unrevoked: Iterable[bytes], cursor: str) -> None:
        """A delta sync: add and remove ids and move the cursor, all or nothing."""
        self._write(None, revoked, unrevoked, cursor)

    def _write(self, prepare: Callable[[sqlite3.Connection], object] | None, add: Iterable[bytes],
               remove: Iterable[bytes], cursor: str) -> None:
        with self._write_lock:
            conn = self._writer
            conn.execute("BEGIN IMMEDIATE")
            try:
                if prepare is not None:
                    prepare(conn)
                conn.executemany("INSERT OR IGNORE INTO revoked (pass_id) VALUES (?)",
                                 ((_check(p),) for p in add))
                conn.executemany("DELETE FROM revoked WHERE pass_id = ?",
                                 ((_check(p),) for p in remove))
                conn.execute("INSERT OR REPLACE INTO revocation_meta (key, value) VALUES (?, ?)",
                             (CURSOR_KEY, cursor))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
        self._writer.close()


def _clear(conn: sqlite3.Connection) -> None:
    conn.execute("DELETE FROM revoked")


def _check(pass_id: bytes) -> bytes:
    if type(pass_id) is not bytes or not 1 <= len(pass_id) <= 64:
        raise ValueError("a revoked pass id is 1..64 bytes")
    return pass_id
