"""Occupancy at the gate, the server side of it: the ledger and the passage outbox persisted
in one SQLite file in state_dir, and the worker that renews the lease and reports passages.

One SQLite file so that the ledger's counters and the outbox commit atomically and survive
power loss (WAL, synchronous=FULL): a reserved place is on disk before the door opens, and a
passage waits in the outbox until the server has answered for it.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..occupancy import LeaseError, LeaseLedger
from ..worker import Worker
from .client import ServerClient, ServerUnavailable, SitePolicy

log = logging.getLogger(__name__)

BATCH = 1000  # the server's cap per POST /v1/passages


class OccupancyStore:
    """Ledger state, the last site policy, and passages not yet reported (by server id, so a
    repeated report is harmless: the server is idempotent by id)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v TEXT NOT NULL)")
        self._db.execute("CREATE TABLE IF NOT EXISTS passages (id TEXT PRIMARY KEY, "
                         "opened INTEGER NOT NULL, seq INTEGER NOT NULL)")

    def _get(self, key: str) -> Any:
        with self._lock:
            row = self._db.execute("SELECT v FROM kv WHERE k = ?", (key,)).fetchone()
        if row is None:
            return None
        try:
            return json.loads(row[0])
        except ValueError:
            return None

    def _put(self, key: str, value: Any) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO kv (k, v) VALUES (?, ?)",
                             (key, json.dumps(value)))

    def load_ledger(self) -> LeaseLedger:
        """The saved ledger; none or junk starts a fresh epoch (the server then counts the
        old epoch's leases as spent: safe)."""
        saved = self._get("ledger")
        if saved is None:
            return LeaseLedger()
        try:
            return LeaseLedger.restore(saved)
        except LeaseError as exc:
            log.error("occupancy: saved ledger refused (%s); starting a new epoch", exc)
            return LeaseLedger()

    def save_ledger(self, ledger: LeaseLedger) -> None:
        self._put("ledger", ledger.state())

    def load_policy(self) -> dict[str, Any] | None:
        saved = self._get("policy")
        if not isinstance(saved, dict):
            return None
        ok = (saved.get("occupancy") in ("off", "soft", "hard")
              and saved.get("anti_passback") in ("off", "soft", "hard")
              and isinstance(saved.get("passback_window_s"), (int, float)))
        return saved if ok else None

    def save_policy(self, policy: dict[str, Any]) -> None:
        self._put("policy", policy)

    def add_passage(self, passage_id: str, opened: bool) -> None:
        """Queue one passage; the first word on an id stands (a late timeout cannot turn a
        reported opening into `opened: false`)."""
        with self._lock:
            seq = self._db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM passages").fetchone()[0]
            self._db.execute("INSERT OR IGNORE INTO passages (id, opened, seq) VALUES (?, ?, ?)",
                             (passage_id, int(opened), seq))

    def pending_passages(self, limit: int = BATCH) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute("SELECT id, opened FROM passages ORDER BY seq LIMIT ?",
                                    (limit,)).fetchall()
        return [{"id": r[0], "opened": bool(r[1])} for r in rows]

    def drop_passages(self, ids: list[str]) -> None:
        with self._lock:
            self._db.executemany("DELETE FROM passages WHERE id = ?", [(i,) for i in ids])

    def passage_count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM passages").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()


class LeaseWorker(Worker):
    """Every `interval_s`: report the ledger and get the site policy and a renewed lease
    (`POST /v1/leases`), then send queued passages (`POST /v1/passages`). A failure leaves
    everything as it was, to be sent next round."""

    name = "leases"

    def __init__(self, client: ServerClient, store: OccupancyStore,
                 report: Callable[[], dict[str, Any]], accept: Callable[[SitePolicy], None],
                 interval_s: float) -> None:
        super().__init__()
        self.client, self.store = client, store
        self.report, self.accept = report, accept
        self.interval_s = interval_s
        self.reachable: bool | None = None

    def run_once(self) -> float:
        try:
            self.accept(self.client.leases(self.report()))
            self._send_passages()
        except ServerUnavailable as exc:
            if self.reachable is not False:
                log.warning("occupancy: server unavailable (%s); spending the lease", exc)
            self.reachable = False
            return self.interval_s
        self.reachable = True
        return self.interval_s

    def _send_passages(self) -> None:
        while batch := self.store.pending_passages():
            accepted = self.client.passages(batch)
            sent = [p["id"] for p in batch]
            # A 200 is the server's last word on these ids: one it left out is another
            # gate's or unknown to it, and re-sending would never change that.
            refused = [i for i in sent if i not in accepted]
            if refused:
                log.warning("occupancy: server did not accept %d passage(s)", len(refused))
            self.store.drop_passages(sent)
            if len(batch) < BATCH or self.stopping:
                return
