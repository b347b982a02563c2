"""What the running gate reports: the last decision, the status file and the fleet's view."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .door.doorio import DoorIO
from .door.relay import Door
from .faults import Faults
from .journal import Journal, utc_now
from .status import FrameRate, StatusWriter
from .verify.credentials import CredentialStore
from .verify.lockdown import Lockdown
from .verify.occupancy import OccupancyGuard
from .verify.online import LAST_SYNC_KEY

log = logging.getLogger(__name__)


class LastDecision:
    """The last decision, written by the frame loop, the GPIO and the MQTT threads: one
    owner, one lock, and readers get a copy."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value: dict[str, Any] | None = None

    def set(self, verdict: str, reason: str, source: str, label: str) -> None:
        value = {"verdict": verdict, "reason": reason, "source": source, "label": label,
                 "at": utc_now()}
        with self._lock:
            self._value = value

    def get(self) -> dict[str, Any] | None:
        with self._lock:
            return None if self._value is None else dict(self._value)


@dataclass(frozen=True)
class Reachability:
    """Whether the central server answered lately: each reader is a part's `reachable`
    (None = not asked yet). Without a [server], `configured` is False and all is None."""

    configured: bool = False
    readers: tuple[Callable[[], bool | None], ...] = ()

    def __call__(self) -> bool | None:
        if not self.configured:
            return None
        seen = [read() for read in self.readers]
        if any(ok is False for ok in seen):
            return False
        return True if any(seen) else None


class StatusBoard:
    """Builds the status snapshot (never a code) from the parts and writes the status file;
    every write also tells the `followers` (the fleet bus) the gate's short view."""

    def __init__(self, gate_id: str, writer: StatusWriter, *, door: Door, door_io: DoorIO,
                 journal: Journal, store: CredentialStore, faults: Faults,
                 lockdown: Lockdown, reachable: Reachability, fail_mode: str,
                 occupancy: OccupancyGuard | None = None) -> None:
        self.gate_id = gate_id
        self.writer = writer
        self.door, self.door_io, self.journal, self.store = door, door_io, journal, store
        self.faults, self.lockdown = faults, lockdown
        self.reachable = reachable
        self.fail_mode = fail_mode
        self.occupancy = occupancy
        self.last_decision = LastDecision()
        self.frame_rate = FrameRate()
        self.started_at = utc_now()
        self.followers: list[Callable[[dict[str, Any]], None]] = []

    def cache_age_s(self) -> float | None:
        value = self._last_sync()
        return None if value is None else max(0.0, time.time() - value)

    def _cache_synced_at(self) -> str | None:
        value = self._last_sync()
        return None if value is None else utc_now(value)

    def _last_sync(self) -> float | None:
        if not self.reachable.configured:
            return None
        value = self.store.get_meta(LAST_SYNC_KEY)
        try:
            return None if value is None else float(value)
        except ValueError:
            return None

    def fleet_view(self) -> dict[str, Any]:
        return {"server_reachable": self.reachable(), "cache_age_s": self.cache_age_s(),
                "lockdown": self.lockdown.on,
                # only with a [gate] site; the bus shows it only where the site counts
                "occupancy": self.occupancy.snapshot() if self.occupancy is not None else None}

    def snapshot(self, state: str | None = None) -> dict[str, Any]:
        """What `gate status` shows: no code, ever."""
        relay = self.door.relay
        return {
            "gate": self.gate_id, "pid": os.getpid(), "started_at": self.started_at,
            "state": state or ("fault" if self.faults else "running"),
            "faults": self.faults.names(), "last_decision": self.last_decision.get(),
            "door": {"relay": "locked" if relay.closed or not relay.is_active else "unlocked",
                     **self.door_io.snapshot(), "fail_mode": self.fail_mode},
            "server_reachable": self.reachable(),
            "cache_synced_at": self._cache_synced_at(),
            # Events the server refused alone, set aside for good (journal dead_letters).
            "dead_letters": (self.journal.dead_letter_count() if self.reachable.configured
                             else None),
            "fps": self.frame_rate.fps(),
            "occupancy": self.occupancy.snapshot() if self.occupancy is not None else None,
        }

    def write(self, state: str | None = None, *, force: bool = True) -> None:
        """Write the file now (force) or when due; a failing write is the `status_file`
        fault. A snapshot that cannot be built is logged, never raised."""
        try:
            snapshot = self.snapshot(state)
        except Exception:
            log.exception("status: building the snapshot failed")
            return
        if self.followers:
            view = self.fleet_view()
            for follow in self.followers:
                follow(view)
        if force:
            self.writer.write(snapshot)
        else:
            self.writer.maybe_write(snapshot)
        self.faults.set("status_file", self.writer.failing)
