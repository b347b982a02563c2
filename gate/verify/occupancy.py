"""The occupancy step of the chain: after every other verifier, a grant at a counting site
spends the lease offline (or on `lease_spend`), the timed anti-passback rule applies offline,
and each grant waits for the door to open before it counts.

An in-grant counts when the door opens: with a door contact, the contact opening within
open_s + grace after the grant commits it (else it is released: nobody came in); without a
contact the grant itself commits it (approximate: a person who turns back still counts,
which errs on the safe side of the capacity).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ..central.client import SitePolicy
from ..central.leases import OccupancyStore
from ..contracts import Reason
from ..occupancy import RecentEntries, Ticket
from .decision import Decision

log = logging.getLogger(__name__)

# Never heard from the server (first start offline): count as a `hard` site with no lease,
# so an offline gate admits nobody it cannot account for (DESIGN invariant 8).
UNKNOWN_POLICY = {"occupancy": "hard", "anti_passback": "off", "passback_window_s": 0.0}


@dataclass
class _Pending:
    deadline: float
    direction: str              # in | out
    key: str                    # what the timed anti-passback rule remembers
    ticket: Ticket | None       # a reserved lease place
    passage_id: str | None      # the server's passage, to report
    offline: bool


class OccupancyGuard:
    """Thread-safe: the frame loop calls `step`, the contact's thread `door_opened`, the
    lease worker `accept` and `report`. `monotonic` is injected for tests."""

    def __init__(self, store: OccupancyStore, direction: str, *, has_contact: bool,
                 open_s: float, max_open_s: float, grace_s: float, max_keys: int,
                 on_alarm: Callable[[str, str], object],
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.store, self.direction, self.has_contact = store, direction, has_contact
        self.open_s, self.max_open_s, self.grace_s = open_s, max_open_s, grace_s
        self.on_alarm, self.monotonic = on_alarm, monotonic
        self._lock = threading.RLock()
        self.ledger = store.load_ledger()
        self.policy: dict[str, Any] = store.load_policy() or dict(UNKNOWN_POLICY)
        self.recent = RecentEntries(float(self.policy["passback_window_s"]), max_keys)
        self.max_keys = max_keys
        self._pending: list[_Pending] = []
        self.on_passage: Callable[[], None] = lambda: None  # wakes the lease worker
        self.full = False   # the last in-grant was refused occupancy_full: the `full` pattern
        store.save_ledger(self.ledger)  # a fresh epoch is on disk before any report

    # -- the chain step ---------------------------------------------------------------------

    def step(self, decision: Decision, key: str) -> Decision:
        with self._lock:
            out = self._step(decision, key)
            if out.reason == "occupancy_full":   # ours or the server's: show `full`
                self.full = True
            elif out.granted:
                self.full = False
            return out

    def _step(self, d: Decision, key: str) -> Decision:
        if not d.granted:
            return d
        now = self.monotonic()
        if d.source == "server":
            occ = d.occupancy
            if occ is None:
                return d
            ticket = None
            if occ.lease_spend:
                admission = self.ledger.reserve(now)
                if not admission.allowed:
                    return self._deny(d, "occupancy_full")
                ticket = admission.ticket
                self.store.save_ledger(self.ledger)  # on disk before the door opens
            if occ.alarm is not None:
                self.on_alarm(occ.alarm, "server")
            self._expect(d, key, occ.direction or self.direction, ticket, occ.passage_id,
                         offline=False, now=now)
            return d
        return self._offline(d, key, now)

    def _offline(self, d: Decision, key: str, now: float) -> Decision:
        """A grant from the cache, the list or a signed pass: the server was not asked."""
        if self.direction == "out":
            self._expect(d, key, "out", None, None, offline=True, now=now)
            return d
        policy = self.policy
        if policy["anti_passback"] != "off" and self.recent.blocked(key, now):
            if policy["anti_passback"] == "hard":
                return self._deny(d, "anti_passback")
            self.on_alarm("anti_passback", "gate")
        admission = self.ledger.reserve(now)
        ticket = admission.ticket
        if not admission.allowed:
            if policy["occupancy"] == "off":
                pass
            elif policy["occupancy"] == "soft":
                ticket = self.ledger.overspend()
                self.on_alarm("occupancy_full", "gate")
            else:
                log.info("occupancy: offline entry refused (%s)", admission.reason)
                return self._deny(d, "occupancy_full")
        self.store.save_ledger(self.ledger)  # on disk before the door opens
        self._expect(d, key, "in", ticket, None, offline=True, now=now)
        return d

    def _deny(self, d: Decision, reason: Reason) -> Decision:
        return dataclasses.replace(d, verdict="deny", reason=reason, open_s=None, occupancy=None)

    def _expect(self, d: Decision, key: str, direction: str, ticket: Ticket | None,
                passage_id: str | None, *, offline: bool, now: float) -> None:
        open_s = min(d.open_s or self.open_s, self.max_open_s)
        p = _Pending(now + open_s + self.grace_s, direction, key, ticket, passage_id, offline)
        if self.has_contact:
            self._pending.append(p)
        else:
            self._settle(p, opened=True, now=now)

    # -- the door ---------------------------------------------------------------------------

    def door_opened(self) -> None:
        """The contact opened: every grant still waiting is a passage (two people let in on
        one opening both count: the safe side of the capacity)."""
        with self._lock:
            now = self.monotonic()
            pending, self._pending = self._pending, []
            for p in pending:
                self._settle(p, opened=now < p.deadline, now=now)

    def poll(self) -> None:
        """Grants whose door never opened within open_s + grace: nobody passed."""
        with self._lock:
            now = self.monotonic()
            late = [p for p in self._pending if now >= p.deadline]
            if late:
                self._pending = [p for p in self._pending if now < p.deadline]
                for p in late:
                    self._settle(p, opened=False, now=now)

    def observe(self, event: dict[str, Any]) -> None:
        """A journal subscriber: the contact's `door` `open` event."""
        if event.get("kind") == "door" and event.get("state") == "open":
            self.door_opened()

    def _settle(self, p: _Pending, *, opened: bool, now: float) -> None:
        if p.ticket is not None:
            (self.ledger.commit if opened else self.ledger.release)(p.ticket)
        if opened and p.direction == "in":
            self.recent.record(p.key, now)
        if opened and p.direction == "out" and p.offline:
            self.ledger.record_exit()
        self.store.save_ledger(self.ledger)
        if p.passage_id is not None:
            self.store.add_passage(p.passage_id, opened)
            self.on_passage()  # reported now, not a lease interval later

    # -- the lease worker -------------------------------------------------------------------

    def report(self) -> dict[str, Any]:
        with self._lock:
            return self.ledger.report(self.monotonic())

    def accept(self, policy: SitePolicy) -> None:
        with self._lock:
            now = self.monotonic()
            if policy.lease is not None and self.ledger.accept(policy.lease, now):
                self.store.save_ledger(self.ledger)
            new: dict[str, Any] = {"site": policy.site, "occupancy": policy.occupancy,
                   "anti_passback": policy.anti_passback,
                   "passback_window_s": policy.passback_window_s,
                   "capacity": policy.capacity, "inside": policy.inside}
            if new != self.policy:
                self.store.save_policy(new)
                if new["passback_window_s"] != self.policy["passback_window_s"]:
                    self.recent.window_s = float(new["passback_window_s"])
                self.policy = new

    def snapshot(self) -> dict[str, Any]:
        """For `gate status`: the lease, the local counters and the server's last count."""
        with self._lock:
            now = self.monotonic()
            status = self.ledger.status(now)
            led = self.ledger
            return {
                "site": self.policy.get("site"), "direction": self.direction,
                "mode": self.policy["occupancy"], "anti_passback": self.policy["anti_passback"],
                "capacity": self.policy.get("capacity"), "inside": self.policy.get("inside"),
                "full": self.full,
                "lease": None if status is None else {
                    "seq": status.seq, "limit": status.limit, "remaining": status.remaining,
                    "expires_in_s": round(status.expires_in_s, 1)},
                "local": {"spent": led.spent, "unused": led.unused, "exits": led.exits,
                          "admitted_offline": led.spent - led.unused,
                          "waiting_for_door": len(self._pending)},
                "passages_unsent": self.store.passage_count(),
            }


class Chain(Protocol):
    def check(self, code_sha256: str, code: bytes, now: float) -> Decision: ...


class OccupancyChain:
    """The outermost step: what every inner step granted (lockdown included) is counted."""

    def __init__(self, inner: Chain, guard: OccupancyGuard) -> None:
        self.inner, self.guard = inner, guard

    def check(self, code_sha256: str, code: bytes, now: float) -> Decision:
        decision = self.inner.check(code_sha256, code, now)
        return self.guard.step(decision, decision.credential_id or code_sha256)
