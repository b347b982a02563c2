"""The gate's occupancy ledger: the capacity lease it may spend offline, its cumulative
counters, and the per-gate memory of recent entries (the timed anti-passback rule).

Pure logic: no I/O, no threads. Times are the caller's monotonic seconds (never wall time,
which a Pi without an RTC may jump), passed into every call. The daemon persists
`LeaseLedger.state()` and restores it with `LeaseLedger.restore()`; a restored ledger holds
no spendable lease (its monotonic expiry meant nothing after a reboot), only its counters.

Protocol (docs/server-api.md, "Occupancy and leases"): the server grants a lease as a
*limit on the cumulative `spent` counter* with a time to live; the gate spends a place when
it grants an entry offline (`reserve`), and says afterwards whether the door opened
(`commit`) or not (`release`). Every report carries the counters whole, so a lost or
repeated report cannot double-count, and `last_seq` tells the server which older leases the
gate has abandoned.
"""

from __future__ import annotations

import math
import secrets
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

MODES = ("off", "soft", "hard")
MAX_TTL_S = 7 * 24 * 3600.0   # a reply asking for more is refused: a lease is short-lived
MAX_COUNTER = 2**53           # JSON-safe integers only


class LeaseError(ValueError):
    """A lease reply or a saved state the ledger refuses; the message names the field."""


def _int(obj: dict[str, Any], key: str, low: int = 0) -> int:
    value = obj.get(key)
    # bool is an int subclass in Python, but never a count on the wire
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value < MAX_COUNTER:
        raise LeaseError(f"{key}: must be an integer in [{low}, 2^53)")
    return value


@dataclass(frozen=True)
class Lease:
    """What the server granted: the gate may reserve while `spent < limit`, until expiry."""

    seq: int            # increasing per gate; a newer lease replaces every older one
    limit: int          # a cap on the cumulative `spent` counter, not a number of places
    ttl_s: float        # honoured from when the gate received it, on its monotonic clock
    mode: str           # the site's occupancy mode: what to do when the lease is spent

    @classmethod
    def from_json(cls, obj: Any) -> Lease:
        """The `lease` object of a `POST /v1/leases` reply, checked field by field."""
        if not isinstance(obj, dict):
            raise LeaseError("lease: must be an object")
        ttl = obj.get("ttl_s")
        if (not isinstance(ttl, (int, float)) or isinstance(ttl, bool) or not math.isfinite(ttl)
                or not 0 < ttl <= MAX_TTL_S):
            raise LeaseError(f"lease.ttl_s: must be a number in (0, {MAX_TTL_S:.0f}]")
        mode = obj.get("mode")
        if mode not in MODES:
            raise LeaseError(f"lease.mode: must be one of {', '.join(MODES)}")
        return cls(_int(obj, "seq", 1), _int(obj, "limit"), float(ttl), str(mode))


@dataclass(frozen=True)
class ServerOccupancy:
    """The occupancy fields of a `/v1/verify` grant (docs/server-api.md), already checked."""

    passage_id: str | None = None
    direction: str | None = None       # in | out, with passage_id
    alarm: str | None = None           # occupancy_full | anti_passback: soft mode, granted
    lease_spend: bool = False          # full but for this gate's lease: reserve before opening


@dataclass(frozen=True)
class Ticket:
    """One reserved place, to be committed (door opened) or released (it did not)."""

    seq: int
    n: int


@dataclass(frozen=True)
class Admission:
    """The ledger's answer for an offline entry: `allowed` False means the lease is spent
    (or expired, or absent); the caller denies (`hard`, reason `occupancy_full`) or grants
    with an alarm (`soft`)."""

    allowed: bool
    reason: str                 # ok | no_lease | lease_expired | lease_spent | off
    ticket: Ticket | None = None


@dataclass(frozen=True)
class LeaseStatus:
    """The fields `gate status` shows."""

    seq: int
    limit: int
    remaining: int
    expires_in_s: float
    spent: int
    unused: int
    exits: int
    pending: int


class LeaseLedger:
    """Counters are cumulative and only grow: `spent` (places reserved under any lease),
    `unused` (reserved places whose door never opened), `exits` (out passages counted
    offline). People admitted offline = spent - unused."""

    def __init__(self, epoch: str | None = None, spent: int = 0, unused: int = 0,
                 exits: int = 0, last_seq: int = 0) -> None:
        # A new epoch after lost state tells the server these counters restarted at zero.
        self.epoch = epoch or secrets.token_hex(8)
        self.spent, self.unused, self.exits, self.last_seq = spent, unused, exits, last_seq
        self._lease: Lease | None = None
        self._expires_at = -math.inf
        self._pending: dict[int, int] = {}  # ticket n -> lease seq
        self._next_ticket = 0

    def accept(self, lease: Lease, now: float) -> bool:
        """Take a newer lease (by seq); an older or repeated one is ignored (a delayed reply
        must not resurrect an abandoned lease). True when taken."""
        if lease.seq <= self.last_seq:
            return False
        self._lease, self.last_seq = lease, lease.seq
        self._expires_at = now + lease.ttl_s
        return True

    def _live(self, now: float) -> Lease | None:
        if self._lease is None or now >= self._expires_at:
            return None
        return self._lease

    def remaining(self, now: float) -> int:
        lease = self._live(now)
        return max(0, lease.limit - self.spent) if lease else 0

    def reserve(self, now: float) -> Admission:
        """Spend one place for an entry granted offline, if the live lease has one."""
        if self._lease is None:
            return Admission(False, "no_lease")
        if self._lease.mode == "off":
            return Admission(True, "off")
        lease = self._live(now)
        if lease is None:
            return Admission(False, "lease_expired")
        if self.spent >= lease.limit:
            return Admission(False, "lease_spent")
        self.spent += 1
        self._next_ticket += 1
        self._pending[self._next_ticket] = lease.seq
        return Admission(True, "ok", Ticket(lease.seq, self._next_ticket))

    def overspend(self) -> Ticket:
        """A `soft` site admits past the lease: the place is spent all the same, so the
        server counts the person (and raises `lease_overspent`)."""
        self.spent += 1
        self._next_ticket += 1
        self._pending[self._next_ticket] = self.last_seq
        return Ticket(self.last_seq, self._next_ticket)

    def commit(self, ticket: Ticket) -> None:
        """The door opened: the reserved place is a person inside (already in `spent`)."""
        self._pending.pop(ticket.n, None)

    def release(self, ticket: Ticket) -> None:
        """The door did not open: the place was spent on the lease but nobody entered."""
        if self._pending.pop(ticket.n, None) is not None:
            self.unused += 1

    def record_exit(self) -> None:
        """An out passage (the door opened at an out gate) while the server was not told."""
        self.exits += 1

    def report(self, now: float) -> dict[str, Any]:
        """The counters for `POST /v1/leases`. `active` False tells the server this gate
        will never spend lease `last_seq` again (expired or none), so it can settle it."""
        return {"epoch": self.epoch, "spent": self.spent, "unused": self.unused,
                "exits": self.exits, "last_seq": self.last_seq,
                "active": self._live(now) is not None}

    def status(self, now: float) -> LeaseStatus | None:
        lease = self._live(now)
        if lease is None:
            return None
        return LeaseStatus(lease.seq, lease.limit, self.remaining(now),
                           max(0.0, self._expires_at - now), self.spent, self.unused,
                           self.exits, len(self._pending))

    def state(self) -> dict[str, Any]:
        """What to persist (JSON-safe). Pending tickets count as spent, not unused: after a
        crash nobody knows whether that door opened, so the person is assumed inside."""
        return {"epoch": self.epoch, "spent": self.spent, "unused": self.unused,
                "exits": self.exits, "last_seq": self.last_seq}

    @classmethod
    def restore(cls, obj: Any) -> LeaseLedger:
        """A ledger from `state()`; junk raises LeaseError (the caller then starts a fresh
        epoch: the server keeps counting the old epoch's leases as spent)."""
        if not isinstance(obj, dict):
            raise LeaseError("ledger state: must be an object")
        epoch = obj.get("epoch")
        if not isinstance(epoch, str) or not 1 <= len(epoch) <= 64 or not epoch.isalnum():
            raise LeaseError("epoch: must be 1-64 letters or digits")
        spent, unused = _int(obj, "spent"), _int(obj, "unused")
        if unused > spent:
            raise LeaseError("unused: more than spent")
        return cls(epoch, spent, unused, _int(obj, "exits"), _int(obj, "last_seq"))


class RecentEntries:
    """The timed anti-passback rule at one gate: a key (pass id or code SHA-256) that
    entered within `window_s` may not enter again. Bounded: the oldest keys go first, so a
    flood of distinct codes costs memory `max_keys`, not more."""

    def __init__(self, window_s: float, max_keys: int = 100_000) -> None:
        if not window_s >= 0 or max_keys < 1:
            raise ValueError("window_s must be >= 0 and max_keys >= 1")
        self.window_s, self.max_keys = window_s, max_keys
        self._seen: OrderedDict[str, float] = OrderedDict()

    def blocked(self, key: str, now: float) -> bool:
        """True when `key` entered less than `window_s` ago (by this monotonic clock)."""
        self._prune(now)
        at = self._seen.get(key)
        return at is not None and now - at < self.window_s

    def record(self, key: str, now: float) -> None:
        """An entry happened (the door opened) for `key`."""
        if self.window_s <= 0:
            return
        self._seen.pop(key, None)
        self._seen[key] = now
        while len(self._seen) > self.max_keys:
            self._seen.popitem(last=False)

    def _prune(self, now: float) -> None:
        while self._seen:
            key, at = next(iter(self._seen.items()))
            if now - at < self.window_s:
                break
            del self._seen[key]

    def __len__(self) -> int:
        return len(self._seen)
