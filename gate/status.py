"""The status file: a small JSON snapshot the daemon replaces atomically (temp file, then
os.replace), and its reader for `gate status`."""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections import deque
from datetime import datetime
from pathlib import Path
from typing import Any

from .journal import utc_now

log = logging.getLogger(__name__)

STALE_AFTER_S = 15.0  # a running daemon rewrites the file at least every HEARTBEAT_S
HEARTBEAT_S = 5.0


def write_atomic(path: Path, data: dict[str, Any]) -> None:
    """Replace `path` with `data` as JSON: a reader sees the old file or the new, never half.

    No fsync: this is a snapshot, not a record (the journal is the record), and a status file
    rewritten every few seconds should not wear an SD card; after a power cut the next start
    writes a fresh one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, sort_keys=False)
            f.write("\n")
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; `gate status` may run as another user
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


class FrameRate:
    """Frames per second over the last `window_s` seconds of frame timestamps."""

    def __init__(self, window_s: float = 5.0) -> None:
        self.window_ns = int(window_s * 1e9)
        self._stamps: deque[int] = deque()

    def tick(self, ts_ns: int) -> None:
        self._stamps.append(ts_ns)
        while self._stamps and ts_ns - self._stamps[0] > self.window_ns:
            self._stamps.popleft()

    def fps(self, now_ns: int | None = None) -> float:
        now_ns = time.monotonic_ns() if now_ns is None else now_ns
        while self._stamps and now_ns - self._stamps[0] > self.window_ns:
            self._stamps.popleft()
        if len(self._stamps) < 2:
            return 0.0
        span = (self._stamps[-1] - self._stamps[0]) / 1e9
        if span < 0.5:  # too few frames yet to say (the first ones may come back to back)
            return 0.0
        return round((len(self._stamps) - 1) / span, 1)


class StatusWriter:
    """Writes the snapshot when asked: `write()` now (after a decision), `maybe_write()` from
    the frame loop at most every `min_interval_s`, and only when something changed or the
    heartbeat is due. A failing disk is reported once per failure spell, never raised."""

    def __init__(self, path: Path, min_interval_s: float = 1.0,
                 heartbeat_s: float = HEARTBEAT_S) -> None:
        self.path = path
        self.min_interval_s = min_interval_s
        self.heartbeat_s = heartbeat_s
        self._last_at = 0.0
        self._checked_at = float("-inf")
        self._last_body: dict[str, Any] | None = None
        self.failing = False

    def due(self, now: float | None = None) -> bool:
        """True at most once per `min_interval_s`: time to build a snapshot and offer it."""
        now = time.monotonic() if now is None else now
        if now - self._checked_at < self.min_interval_s:
            return False
        self._checked_at = now
        return True

    def maybe_write(self, snapshot: dict[str, Any], now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        if now - self._last_at < self.min_interval_s:
            return False
        if snapshot == self._last_body and now - self._last_at < self.heartbeat_s:
            return False
        return self.write(snapshot, now)

    def write(self, snapshot: dict[str, Any], now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        body = dict(snapshot)
        try:
            write_atomic(self.path, {**body, "updated_at": utc_now()})
        except OSError as exc:
            if not self.failing:
                log.error("status file %s cannot be written: %s", self.path, exc)
            self.failing = True
            return False
        if self.failing:
            log.info("status file %s written again", self.path)
        self.failing = False
        self._last_at, self._last_body = now, body
        return True


def read_status(path: Path) -> dict[str, Any]:
    """The status file as written; raises OSError or ValueError (not JSON)."""
    with path.open(encoding="utf-8") as f:
        data = json.load(f)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a JSON object")
    return data


def age_s(status: dict[str, Any], now: float | None = None) -> float | None:
    """Seconds since the daemon last wrote the file."""
    try:
        at = datetime.fromisoformat(str(status["updated_at"]).replace("Z", "+00:00"))
    except (KeyError, ValueError):
        return None
    return (time.time() if now is None else now) - at.timestamp()


def pid_alive(pid: Any) -> bool | None:
    """Whether a process with this id exists (None: cannot tell)."""
    if not isinstance(pid, int) or pid <= 0:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user (the gate service user)
        return True
    except OSError:
        return None
    return True


def assess(status: dict[str, Any], now: float | None = None) -> dict[str, Any]:
    """The file plus what a reader can add: its age, and whether it is stale (the daemon
    stopped writing it) or the daemon is gone."""
    age = age_s(status, now)
    alive = pid_alive(status.get("pid"))
    running = status.get("state") not in ("stopped", None) and alive is not False
    stale = status.get("state") != "stopped" and (age is None or age > STALE_AFTER_S
                                                   or alive is False)
    cache_age = None
    if status.get("cache_synced_at"):
        cache_age = age_s({"updated_at": status["cache_synced_at"]}, now)
    return {**status, "age_s": None if age is None else round(age, 1),
            "cache_age_s": None if cache_age is None else round(cache_age, 1),
            "running": running and not stale, "stale": stale}


def format_status(s: dict[str, Any]) -> str:
    """For a person at the door with a laptop: one fact per line."""
    lines = [f"gate {s.get('gate')}: {s.get('state')}"
             + (f" (faults: {', '.join(s['faults'])})" if s.get("faults") else "")]
    if s.get("stale"):
        lines.append(f"  WARNING: not updated for {s.get('age_s')} s; is the daemon running?")
    lines.append(f"  updated     {s.get('updated_at')} ({s.get('age_s')} s ago), pid {s.get('pid')}")
    d = s.get("last_decision")
    if d:
        label = f" {d.get('label')!r}" if d.get("label") else ""
        lines.append(f"  last        {str(d.get('verdict')).upper()} ({d.get('reason')}){label} "
                     f"source={d.get('source')} at {d.get('at')}")
    else:
        lines.append("  last        no decision since start")
    door = s.get("door") or {}
    contact = door.get("contact") or "no contact"
    alarms = door.get("alarms") or []
    lines.append(f"  door        relay {door.get('relay')}, {contact}"
                 + (f", ALARM: {', '.join(alarms)}" if alarms else ""))
    reach = s.get("server_reachable")
    lines.append("  server      " + ("not configured" if reach is None
                                     else "reachable" if reach else "UNREACHABLE"))
    cache = s.get("cache_age_s")
    lines.append("  cache age   " + ("-" if cache is None else _duration(cache)))
    dead = s.get("dead_letters")
    if isinstance(dead, int) and not isinstance(dead, bool):
        lines.append(f"  upload      {dead} event(s) refused by the server, set aside"
                     + (" (see the journal's dead_letters table)" if dead else ""))
    occ = s.get("occupancy")
    if isinstance(occ, dict):
        lines.append("  occupancy   " + _occupancy(occ))
    lines.append(f"  camera      {s.get('fps')} frames/s")
    return "\n".join(lines)


def _occupancy(occ: dict[str, Any]) -> str:
    """One line: site, mode, the server's last count, the lease and the local counters (the
    status file is our own, but read as untrusted: a missing field shows as '?')."""
    lease = occ.get("lease")
    found = occ.get("local")
    local: dict[str, Any] = found if isinstance(found, dict) else {}
    held = ("no lease" if not isinstance(lease, dict) else
            f"lease #{lease.get('seq', '?')} {lease.get('remaining', '?')} of "
            f"{lease.get('limit', '?')} left, {lease.get('expires_in_s', '?')} s")
    return (f"site {occ.get('site', '?')} ({occ.get('direction', '?')}, "
            f"{occ.get('mode', '?')}{', FULL' if occ.get('full') else ''}): server counted "
            f"{occ.get('inside', '?')} of {occ.get('capacity', '?')}; {held}; local: admitted "
            f"offline {local.get('admitted_offline', '?')}, exits {local.get('exits', '?')}, "
            f"passages unsent {occ.get('passages_unsent', '?')}")


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172800:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} days"
