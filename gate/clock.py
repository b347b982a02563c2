"""The trusted clock: a high-water mark of time the gate has good evidence for, so that a wall
clock set back (a dead RTC, a Pi booting at its last fake-hwclock time or in 1970, a hostile
NTP answer) never makes an expired pass valid again.

Evidence, each kept as a mark that advances with the monotonic clock while the gate runs:
- local: every reading of the wall clock, the latest journal event at start, and the mark
  persisted in `state_dir/clock.json` by the previous run (written atomically);
- server: the `Date` header of each usable server reply, accepted only when it is at most
  SERVER_AHEAD_MAX_S ahead of the local mark, and bounded against local evidence alone (never
  against an earlier server Date), so a hostile or broken server can move the gate's time at
  most that far ahead, never ratchet it on: it cannot expire every pass for ever.
Trusted time is the latest of the wall clock and both marks. A wall clock more than
BACK_TOLERANCE_S behind the trusted time is a `clock` fault (reported via `on_fault`) until
it catches up.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

log = logging.getLogger(__name__)

SERVER_AHEAD_MAX_S = 86400.0  # a server Date may put the gate at most one day ahead
BACK_TOLERANCE_S = 2.0        # NTP slews and small steps back are no fault
SAVE_EVERY_S = 60.0           # persist the mark once it has moved this far
MIN_EPOCH = 1_577_836_800.0   # 2020-01-01: anything earlier is no evidence of the time
MAX_EPOCH = 32_503_680_000.0  # 3000-01-01: anything later is junk

# on_fault(active, behind_s): the wall clock fell behind the trusted time, or caught up.
FaultListener = Callable[[bool, float], None]


def _plausible(epoch: object) -> float | None:
    if isinstance(epoch, bool) or not isinstance(epoch, (int, float)):
        return None
    value = float(epoch)
    return value if math.isfinite(value) and MIN_EPOCH <= value <= MAX_EPOCH else None


class TrustedClock:
    """Thread-safe: the frame loop reads it, the server clients feed it their Date headers."""

    def __init__(self, state_path: Path | None = None, *,
                 wall: Callable[[], float] = time.time,
                 mono: Callable[[], float] = time.monotonic,
                 on_fault: FaultListener | None = None) -> None:
        self.state_path = state_path
        self._wall = wall
        self._mono = mono
        self.on_fault = on_fault
        self._lock = threading.Lock()
        # A mark is kept as (epoch - monotonic): it advances with the monotonic clock.
        self._local_base = -math.inf
        self._server_base = -math.inf
        self._saved_at = -math.inf
        self.behind_s = 0.0
        self.fault = False
        if state_path is not None:
            self._load(state_path)

    # -- evidence ---------------------------------------------------------------------------

    def observe(self, epoch: float) -> None:
        """Local evidence that it is at least `epoch` now (e.g. the latest journal event)."""
        value = _plausible(epoch)
        if value is not None:
            with self._lock:
                self._local_base = max(self._local_base, value - self._mono())

    def server_time(self, epoch: float) -> None:
        """A server reply's Date: taken only within SERVER_AHEAD_MAX_S of the local mark."""
        value = _plausible(epoch)
        if value is None:
            return
        with self._lock:
            mono = self._mono()
            local = max(self._wall(), self._local_base + mono)
            if value > local + SERVER_AHEAD_MAX_S:
                log.warning("clock: ignoring a server Date %.0f s ahead of the local clock",
                            value - local)
                return
            self._server_base = max(self._server_base, value - mono)

    # -- reading ----------------------------------------------------------------------------

    def now(self) -> float:
        """Trusted epoch seconds: never earlier than any evidence seen."""
        return self.trusted(self._wall())

    def trusted(self, wall: float) -> float:
        """Trusted time given a wall clock reading `wall` (which counts as evidence too)."""
        with self._lock:
            mono = self._mono()
            reading = _plausible(wall)
            mark = max(self._local_base, self._server_base) + mono
            if reading is not None:
                self._local_base = max(self._local_base, reading - mono)
            trusted = max(mark, reading if reading is not None else -math.inf)
            behind = trusted - wall if math.isfinite(trusted) else 0.0
            self.behind_s = max(0.0, behind)
            changed = (behind > BACK_TOLERANCE_S) != self.fault
            if changed:
                self.fault = not self.fault
        if changed:
            self._report()
        if not math.isfinite(trusted):  # no evidence at all, not even a plausible wall clock
            return wall
        return trusted

    def _report(self) -> None:
        if self.fault:
            log.error("clock: the wall clock is %.0f s behind the trusted time; validity "
                      "checks use the trusted time", self.behind_s)
        else:
            log.warning("clock: the wall clock caught up with the trusted time")
        if self.on_fault is not None:
            try:
                self.on_fault(self.fault, self.behind_s)
            except Exception:
                log.exception("clock: reporting the fault failed")

    # -- persistence ------------------------------------------------------------------------

    def save_if_due(self) -> None:
        if self.now() - self._saved_at >= SAVE_EVERY_S:
            self.save()

    def save(self) -> None:
        """Write the marks atomically (temp file, fsync, rename); errors are logged only."""
        if self.state_path is None:
            return
        with self._lock:
            mono = self._mono()
            local = max(self._local_base + mono, _plausible(self._wall()) or -math.inf)
            server = self._server_base + mono
        if not math.isfinite(local):
            return
        body = {"local": local, "server": server if math.isfinite(server) else None}
        try:
            _write_atomic(self.state_path, json.dumps(body).encode())
        except OSError as exc:
            log.error("clock: cannot save %s: %s", self.state_path, exc)
            return
        self._saved_at = max(local, server)

    def _load(self, path: Path) -> None:
        try:
            data = json.loads(path.read_bytes())
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            log.error("clock: ignoring unreadable %s: %s", path, exc)
            return
        if not isinstance(data, dict):
            log.error("clock: ignoring %s: not an object", path)
            return
        mono = self._mono()
        local, server = _plausible(data.get("local")), _plausible(data.get("server"))
        if local is not None:
            self._local_base = local - mono
        if server is not None and local is not None and server <= local + SERVER_AHEAD_MAX_S:
            self._server_base = server - mono
        self._saved_at = max(local or -math.inf, self._server_base + mono)


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the rename itself survives a power cut
    finally:
        os.close(dir_fd)


def latest_journal_time(journal_path: Path) -> float | None:
    """Epoch of the latest event in the journal (its `at` index makes this cheap), or None."""
    if not journal_path.exists():
        return None
    try:
        db = sqlite3.connect(f"file:{journal_path}?mode=ro", uri=True, timeout=5)
        try:
            row = db.execute("SELECT max(at) FROM events").fetchone()
        finally:
            db.close()
    except sqlite3.Error as exc:
        log.error("clock: cannot read the journal's latest event: %s", exc)
        return None
    if not row or not isinstance(row[0], str):
        return None
    try:
        return datetime.fromisoformat(row[0].replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
