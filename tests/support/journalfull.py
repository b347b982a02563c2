"""A journal made full the way a full disk makes it: SQLite's own SQLITE_FULL ("database or
disk is full"), by capping the file at its current size and filling the free space left."""

from __future__ import annotations

import sqlite3
import uuid

from gate.journal import Journal


def fill_journal(journal: Journal) -> None:
    """Cap `journal`'s database at its current pages and fill them: every later insert of
    an event fails with SQLITE_FULL, as on a full filesystem."""
    with journal._lock:
        db = journal._db
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        db.execute(f"PRAGMA max_page_count = {pages}")
        for size in (2000, 1000, 500, 250, 120, 60, 30, 15, 8, 4, 2, 1, 0):
            while True:
                try:
                    db.execute("INSERT INTO events (id, at, kind, body) VALUES (?, ?, ?, ?)",
                               (uuid.uuid4().hex[:8], "0", "x", "f" * size))
                except sqlite3.OperationalError as exc:
                    assert "full" in str(exc), exc  # noqa: PT017 (a fill loop, not a test of the raise)
                    break


def unfill_journal(journal: Journal) -> None:
    """Free space again (the technician cleared the disk)."""
    with journal._lock:
        journal._db.execute("DELETE FROM events WHERE kind = 'x'")
        journal._db.execute("PRAGMA max_page_count = 1073741823")
