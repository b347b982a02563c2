"""Occupancy and anti-passback at the server: the site's count, what still fits, the
online decision's occupancy step, passage reports, manual correction and the daily reset.

Accounting (DESIGN invariant 8): a site's places are taken by `inside` (people counted in),
online holds (an in-grant whose door has not been reported yet) and the unsettled part of
leases (capacity an offline gate may spend, or may have spent and not yet reported). A grant
or a lease is given only from what is left, so admitted people never exceed capacity
whatever the network does; every uncertainty is resolved towards "counted inside".
"""

from __future__ import annotations

import json
import logging
import math
import secrets
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from ..core.config import OccupancySettings
from ..core.timeutil import as_utc, format_time
from ..db.models import Gate, GateLedger, Lease, Pass, Passage, Presence, Site
from . import events

log = logging.getLogger(__name__)
SERVER_GATE = "server"   # the gate id of events the server journals about a site


@dataclass(frozen=True)
class Count:
    """A site's places right now."""

    capacity: int | None
    inside: int
    holds: int        # online in-grants not yet reported
    leased: int       # unsettled lease places (spendable or spent-unreported)

    @property
    def free(self) -> int | None:
        if self.capacity is None:
            return None
        return self.capacity - self.inside - self.holds - self.leased


@dataclass(frozen=True)
class Outcome:
    """The occupancy step's verdict on an online grant."""

    decision: str                  # grant | deny
    reason: str                    # ok | occupancy_full | anti_passback
    alarm: str | None = None       # soft mode: granted, with this alarm raised
    passage: Passage | None = None
    lease_spend: bool = False      # the gate must pay this entry from its lease


def capacity_of(site: Site) -> int | None:
    """Direct capacity, or the percentage of the headcount rounded down (50% of 240 = 120)."""
    if site.capacity is not None:
        return site.capacity
    if site.limit_pct is not None and site.headcount is not None:
        return math.floor(site.limit_pct * site.headcount / 100 + 1e-9)
    return None


def counting(site: Site) -> bool:
    return site.occupancy != "off" and capacity_of(site) is not None


def lock_site(session: Session, site_id: int) -> Site:
    """The site row, locked for this transaction on PostgreSQL (SQLite serialises writers),
    so two gates cannot both take the last place."""
    site = session.scalar(select(Site).where(Site.id == site_id).with_for_update())
    if site is None:
        raise LookupError(f"site {site_id} vanished")
    session.refresh(site)
    return site


def _gate_reserve(session: Session, site_id: int, exclude: str | None = None) -> dict[str, int]:
    """Per gate: max unsettled lease limit minus the gate's reported `spent`."""
    rows = session.execute(
        select(Lease.gate_id, func.max(Lease.limit))
        .where(Lease.site_id == site_id, Lease.settled.is_(False))
        .group_by(Lease.gate_id)).all()
    out: dict[str, int] = {}
    for gate_id, top in rows:
        if gate_id == exclude:
            continue
        ledger = session.get(GateLedger, gate_id)
        out[gate_id] = max(0, int(top) - (ledger.spent if ledger else 0))
    return out


def lapse_holds(session: Session, site: Site, now: datetime) -> None:
    """Holds past their time: an entry counts as opened (the person may well be inside),
    an exit as not (the person is still counted inside). Both are the safe side."""
    stale = session.scalars(select(Passage).where(
        Passage.site_id == site.id, Passage.state == "pending",
        Passage.expires_at <= now)).all()
    for p in stale:
        if p.paid:
            p.state = "assumed"  # the gate's spent counter has it (or its lease expired)
        elif p.direction == "in":
            p.state = "assumed"
            site.inside += 1
        else:
            p.state = "lapsed"
            _set_presence(session, p.pass_id, p.prev_inside, None)


def count(session: Session, site: Site, now: datetime, exclude_gate: str | None = None) -> Count:
    lapse_holds(session, site, now)
    holds = session.scalar(select(func.count()).select_from(Passage).where(
        Passage.site_id == site.id, Passage.state == "pending", Passage.direction == "in",
        Passage.paid.is_(False))) or 0
    leased = sum(_gate_reserve(session, site.id, exclude_gate).values())
    return Count(capacity_of(site), site.inside, int(holds), leased)


def _presence(session: Session, pass_id: str) -> Presence:
    row = session.get(Presence, pass_id)
    if row is None:
        row = Presence(pass_id=pass_id, inside=False, entered_at=None)
        session.add(row)
    return row


def _set_presence(session: Session, pass_id: str, inside: bool, entered: datetime | None) -> None:
    row = _presence(session, pass_id)
    row.inside = inside
    if entered is not None:
        row.entered_at = entered


def _passback(site: Site, presence: Presence, now: datetime) -> bool:
    if site.anti_passback == "off":
        return False
    if presence.inside:
        return True
    window = site.passback_window_s
    return bool(window and presence.entered_at is not None
                and now - as_utc(presence.entered_at) < timedelta(seconds=window))


def on_grant(session: Session, gate: Gate, pass_id: str, now: datetime,
             cfg: OccupancySettings) -> Outcome | None:
    """The occupancy and anti-passback step after the pass itself was found valid. None when
    the site counts nothing (both modes off); otherwise the passage the gate must report."""
    site = lock_site(session, gate.site_id)
    if site.occupancy == "off" and site.anti_passback == "off":
        return None
    presence = _presence(session, pass_id)
    direction = gate.direction
    if direction == "both":  # one door both ways: the pass's presence says which way
        direction = "out" if presence.inside else "in"
    alarm, paid = None, False
    if direction == "in":
        if _passback(site, presence, now):
            if site.anti_passback == "hard":
                return Outcome("deny", "anti_passback")
            alarm = "anti_passback"
        if counting(site):
            free = count(session, site, now).free
            # The site is full but for this gate's own lease: the gate may spend it online
            # as offline (it reserves in its ledger first, and denies if that fails).
            paid = (free is not None and free <= 0
                    and _gate_reserve(session, site.id).get(gate.id, 0) > 0)
            if free is not None and free <= 0 and not paid:
                if site.occupancy == "hard":
                    return Outcome("deny", "occupancy_full")
                alarm = alarm or "occupancy_full"
    passage = Passage(id=secrets.token_hex(12), site_id=site.id, gate_id=gate.id,
                      pass_id=pass_id, direction=direction, state="pending",
                      prev_inside=presence.inside, created_at=now, paid=paid,
                      expires_at=now + timedelta(seconds=cfg.hold_s))
    session.add(passage)
    # Presence changes at the grant, so the code handed back over the turnstile is refused
    # at once; a door that did not open restores it.
    _set_presence(session, pass_id, direction == "in", now if direction == "in" else None)
    if alarm:
        events.alarm(session, gate.id, alarm, now, site=site.name, pass_id=pass_id)
    return Outcome("grant", "ok", alarm, passage, paid)


def verify_fields(outcome: Outcome) -> dict[str, Any]:
    """What the occupancy step adds to (or changes in) a verify reply."""
    if outcome.decision == "deny":
        return {"decision": "deny", "reason": outcome.reason, "open_s": None}
    out: dict[str, Any] = {}
    if outcome.passage is not None:
        out["passage"] = {"id": outcome.passage.id, "direction": outcome.passage.direction}
    if outcome.alarm:
        out["alarm"] = outcome.alarm
    if outcome.lease_spend:
        out["lease_spend"] = True
    return out


def report_passages(session: Session, gate: Gate, items: list[tuple[str, bool]],
                    now: datetime) -> list[str]:
    """The gate says whether each granted door opened. Idempotent; unknown ids (or another
    gate's) are left out of the returned list."""
    site = lock_site(session, gate.site_id)
    lapse_holds(session, site, now)
    done = []
    for pid, opened in items:
        p = session.get(Passage, pid)
        if p is None or p.gate_id != gate.id:
            continue
        done.append(pid)
        if p.paid:  # counted by the gate's lease counters, not here
            p.state = "opened" if opened else "unused"
            if not opened:
                _set_presence(session, p.pass_id, p.prev_inside, None)
        elif p.state == "pending" and opened:
            p.state = "opened"
            site.inside = site.inside + 1 if p.direction == "in" else max(0, site.inside - 1)
        elif p.state in ("pending", "assumed", "lapsed") and not opened:
            if p.state == "assumed":
                site.inside = max(0, site.inside - 1)
            p.state = "unused"
            _set_presence(session, p.pass_id, p.prev_inside, None)
        elif p.state == "lapsed" and opened:  # an exit reported after its hold lapsed
            p.state = "opened"
            site.inside = max(0, site.inside - 1)
            _set_presence(session, p.pass_id, False, None)
        elif p.state == "assumed" and opened:
            p.state = "opened"
    return done


def journal(session: Session, site: Site, action: str, now: datetime, **detail: Any) -> None:
    """A server event about a site (kind "occupancy"), beside the gates' events."""
    event = {"id": f"srv-{secrets.token_hex(12)}", "at": format_time(now), "gate": SERVER_GATE,
             "kind": "occupancy", "action": action, "site": site.name, **detail}
    events.store(session, SERVER_GATE, [event], now)
    log.info("occupancy %s at site %s: %s", action, site.name, json.dumps(detail, sort_keys=True))


def correct(session: Session, site: Site, inside: int, by: str, now: datetime,
            note: str = "") -> None:
    """An operator's count of the people inside replaces the server's."""
    if not 0 <= inside <= 10_000_000:
        raise ValueError("--count: must be a whole number from 0")
    site = lock_site(session, site.id)
    before = site.inside
    site.inside = inside
    journal(session, site, "correct", now, by=by, before=before, after=inside,
            **({"note": note[:200]} if note else {}))


def reset(session: Session, site: Site, now: datetime, by: str) -> None:
    """Everyone is assumed gone: count 0, every pass outside, and leases past their reclaim
    time settled (whoever they admitted is gone too). Live leases stay held: their gate may
    still spend them."""
    site = lock_site(session, site.id)
    before = site.inside
    site.inside = 0
    site.last_reset_at = now
    session.execute(update(Presence).where(Presence.pass_id.in_(
        select(Pass.id).where(Pass.site_id == site.id))).values(inside=False))
    session.execute(update(Passage).where(
        Passage.site_id == site.id, Passage.state == "pending",
        Passage.expires_at <= now).values(state="lapsed"))
    settled = session.execute(update(Lease).where(
        Lease.site_id == site.id, Lease.settled.is_(False),
        Lease.reclaim_at <= now).values(settled=True))
    journal(session, site, "reset", now, by=by, before=before, after=0,
            leases_settled=getattr(settled, "rowcount", 0))


def last_due(site: Site, now: datetime) -> datetime | None:
    """The latest reset time at or before `now` (site-local HH:MM), in UTC."""
    if not site.reset_at:
        return None
    hour, minute = (int(x) for x in site.reset_at.split(":"))
    tz = ZoneInfo(site.timezone)
    local = as_utc(now).astimezone(tz)
    due = datetime.combine(local.date(), time(hour, minute), tzinfo=tz)
    if as_utc(due) > as_utc(now):
        due = datetime.combine(local.date() - timedelta(days=1), time(hour, minute), tzinfo=tz)
    return as_utc(due)


def run_due_resets(session: Session, now: datetime) -> list[str]:
    """Reset every site whose daily reset time passed since its last reset (or creation).
    Idempotent: run it as often as you like; a server down over the reset time resets once
    when it is back."""
    done = []
    for site in session.scalars(select(Site).where(Site.reset_at.is_not(None))).all():
        due = last_due(site, now)
        since = as_utc(site.last_reset_at or site.created_at)
        if due is not None and since < due:
            reset(session, site, now, by="schedule")
            done.append(site.name)
    return done
