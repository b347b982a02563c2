"""Capacity leases for offline gates: take a gate's counter report, settle the leases it
has abandoned, and lease it part of what is left, sized to its recent traffic.

A lease is a cap on the gate's cumulative `spent` counter. Until settled, a lease holds
back (its limit - reported spent) places, spendable or spent-but-unreported. It is settled
only when the gate reports it can no longer spend it: a newer lease reached the gate
(seq < last_seq) or the gate holds none (seq <= last_seq, active false). Expiry alone never
frees places: after it, the gate cannot spend more, but may have spent without telling us;
only a report (or the daily reset, which assumes everyone left) settles it. So a lease is
never re-issued while its gate may still spend it, and the count never misses a person.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from ..core.config import OccupancySettings
from ..core.timeutil import format_time
from ..db.models import Gate, GateLedger, Lease, Passage, Site
from . import events
from .occupancy import capacity_of, count, counting, lock_site

log = logging.getLogger(__name__)


class ReportError(ValueError):
    """A report the server refuses (400); the message names the field."""


@dataclass(frozen=True)
class Report:
    epoch: str
    spent: int
    unused: int
    exits: int
    last_seq: int
    active: bool


def _max_unsettled(session: Session, gate_id: str, epoch: str) -> int | None:
    top = session.scalar(select(func.max(Lease.limit)).where(
        Lease.gate_id == gate_id, Lease.epoch == epoch, Lease.settled.is_(False)))
    return None if top is None else int(top)


def _ledger(session: Session, gate: Gate, site: Site, report: Report) -> GateLedger:
    ledger = session.get(GateLedger, gate.id)
    if ledger is None:
        ledger = GateLedger(gate_id=gate.id, epoch=report.epoch, spent=0, unused=0, exits=0,
                            next_seq=1)
        session.add(ledger)
        session.flush()
    elif ledger.epoch != report.epoch:
        # The gate lost its counters: whatever its old leases allowed may have entered.
        top = _max_unsettled(session, gate.id, ledger.epoch)
        if top is not None and top > ledger.spent:
            site.inside += top - ledger.spent
        session.execute(update(Lease).where(Lease.gate_id == gate.id,
                                            Lease.epoch == ledger.epoch).values(settled=True))
        log.warning("gate %s: new ledger epoch; old leases counted as spent", gate.id)
        ledger.epoch, ledger.spent, ledger.unused, ledger.exits = report.epoch, 0, 0, 0
    return ledger


def _apply(session: Session, gate: Gate, site: Site, ledger: GateLedger, r: Report,
           now: datetime) -> None:
    if r.unused > r.spent:
        raise ReportError("unused: more than spent")
    # Counters only grow; a smaller one is a delayed report, and max() ignores it.
    d_spent = max(0, r.spent - ledger.spent)
    d_unused = max(0, r.unused - ledger.unused)
    d_exits = max(0, r.exits - ledger.exits)
    top = _max_unsettled(session, gate.id, ledger.epoch)
    if r.spent > max(top or 0, ledger.spent):
        # More than any lease allowed: a bug or a tampered gate. The people are counted all
        # the same, and someone should look.
        events.alarm(session, gate.id, "lease_overspent", now, site=site.name,
                     spent=r.spent, limit=top or 0)
    site.inside = max(0, site.inside + d_spent - d_unused - d_exits)
    ledger.spent += d_spent
    ledger.unused += d_unused
    ledger.exits += d_exits
    ledger.reported_at = now
    last = min(r.last_seq, ledger.next_seq - 1)  # a seq never issued settles nothing more
    bound = last if not r.active else last - 1
    session.execute(update(Lease).where(
        Lease.gate_id == gate.id, Lease.epoch == ledger.epoch, Lease.seq <= bound,
        Lease.settled.is_(False)).values(settled=True))


def _want(session: Session, gate: Gate, d_spent: int, now: datetime,
          cfg: OccupancySettings) -> int:
    """Places this gate may need for one lease period: twice its entry rate over the
    traffic window, within [min_lease, max_lease]."""
    since = now - timedelta(seconds=cfg.traffic_window_s)
    recent = session.scalar(select(func.count()).select_from(Passage).where(
        Passage.gate_id == gate.id, Passage.direction == "in",
        Passage.created_at >= since)) or 0
    rate = (int(recent) + d_spent) / cfg.traffic_window_s
    return max(cfg.min_lease, min(cfg.max_lease, math.ceil(2 * rate * cfg.lease_ttl_s)))


def _issue(session: Session, gate: Gate, site: Site, ledger: GateLedger, want: int,
           now: datetime, cfg: OccupancySettings) -> Lease:
    free = count(session, site, now, exclude_gate=gate.id).free or 0
    # An equal share of what is free per lease-taking gate (measured better in
    # bench.occupancy than half shares: offline gates refused more than online ones gained).
    takers = int(session.scalar(select(func.count()).select_from(Gate).where(
        Gate.site_id == site.id, Gate.direction != "out")) or 1)
    share = free // takers if free >= takers else min(1, max(0, free))
    places = max(0, min(want, share))
    seq = ledger.next_seq
    ledger.next_seq += 1
    lease = Lease(gate_id=gate.id, site_id=site.id, epoch=ledger.epoch, seq=seq,
                  limit=ledger.spent + places, issued_at=now, settled=False,
                  reclaim_at=now + timedelta(seconds=cfg.lease_ttl_s + cfg.lease_margin_s))
    session.add(lease)
    return lease


def renew(session: Session, gate: Gate, report: Report, now: datetime,
          cfg: OccupancySettings) -> dict[str, Any]:
    """Apply the gate's report and answer with the site's count and a fresh lease (for
    `in` and `both` gates of a counting site)."""
    site = lock_site(session, gate.site_id)
    ledger = _ledger(session, gate, site, report)
    before = ledger.spent
    _apply(session, gate, site, ledger, report, now)
    session.flush()
    lease_json: dict[str, Any] | None = None
    if gate.direction != "out":
        mode = site.occupancy if counting(site) else "off"
        if mode == "off":
            limit, seq = ledger.spent, ledger.next_seq
            ledger.next_seq += 1
            lease_json = {"seq": seq, "limit": limit, "places": 0, "ttl_s": cfg.lease_ttl_s,
                          "mode": "off"}
        else:
            lease = _issue(session, gate, site, ledger,
                           _want(session, gate, ledger.spent - before, now, cfg), now, cfg)
            session.flush()
            lease_json = {"seq": lease.seq, "limit": lease.limit,
                          "places": lease.limit - ledger.spent, "ttl_s": cfg.lease_ttl_s,
                          "mode": mode,
                          "expires_at": format_time(now + timedelta(seconds=cfg.lease_ttl_s))}
    c = count(session, site, now)
    return {"site": site.name, "direction": gate.direction, "occupancy": site.occupancy,
            "anti_passback": site.anti_passback, "passback_window_s": site.passback_window_s,
            "capacity": capacity_of(site), "inside": c.inside, "free": c.free,
            "lease": lease_json}
