"""Credential sync for gates: the site's passes as a full list or a delta after a cursor.

Cursor = "<site epoch>-<revision>". A delta is an index range scan on (site_id, revision),
so it costs O(changes); the full list is sent only without a usable cursor.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Connection, bindparam, delete, select
from sqlalchemy.orm import Session

from ..core.timeutil import format_time
from ..db.models import Pass, Site

_CURSOR = re.compile(r"([0-9a-f]{16})-([0-9]{1,18})")


class SiteState(Protocol):
    """What sync needs of a site: a Site row, or gateauth.GateAuth (read with the token)."""

    @property
    def epoch(self) -> str: ...
    @property
    def revision(self) -> int: ...
    @property
    def floor(self) -> int: ...


@dataclass(frozen=True)
class Page:
    cursor: str
    full: bool
    credentials: list[dict[str, Any]]


def usable_since(site: SiteState, since: str | None) -> int | None:
    """The revision a delta can start from, or None: a full list is needed."""
    match = _CURSOR.fullmatch(since or "")
    if match is None or match.group(1) != site.epoch:
        return None
    rev = int(match.group(2))
    # From the future (another database) or older than purged tombstones: start over.
    if rev > site.revision or rev < site.floor:
        return None
    return rev


def etag(site: Site) -> str:
    """The site's state: a gate holding it (the cache and cursor of that answer, stored
    together) is current whatever it asks, so the 304 needs no listing at all."""
    return etag_of(site.id, site)


def etag_of(site_id: int, site: SiteState) -> str:
    key = f"{site_id}\n{site.epoch}\n{site.revision}\n{site.floor}"
    return '"' + hashlib.sha256(key.encode()).hexdigest()[:32] + '"'


# Columns, not ORM objects: building a Pass per row cost more than the query.
_WIRE = (Pass.id, Pass.code_sha256, Pass.holder, Pass.valid_from, Pass.valid_until,
         Pass.status, Pass.revoked)


def wire(row: Any) -> dict[str, Any]:
    """One pass as a gate gets it, from a Pass or a row of the _WIRE columns."""
    out: dict[str, Any] = {"id": row.id, "code_sha256": row.code_sha256, "label": row.holder}
    if row.valid_from is not None:
        out["valid_from"] = format_time(row.valid_from)
    if row.valid_until is not None:
        out["valid_until"] = format_time(row.valid_until)
    if row.status is not None:
        out["status"] = row.status
    if row.revoked:
        out["revoked"] = True
    return out


# Built once with bound parameters (as the gate auth query): the full list and the delta.
_FULL = (select(*_WIRE).where(Pass.site_id == bindparam("site"), Pass.revoked.is_(False))
         .order_by(Pass.revision))
_DELTA = (select(*_WIRE).where(Pass.site_id == bindparam("site"),
                               Pass.revision > bindparam("start"))
          .order_by(Pass.revision))


def page(conn: Session | Connection, site_id: int, site: SiteState,
         since: str | None) -> Page:
    start = usable_since(site, since)
    if start is None:
        rows = conn.execute(_FULL, {"site": site_id}).all()
    else:
        rows = conn.execute(_DELTA, {"site": site_id, "start": start}).all()
    return Page(f"{site.epoch}-{site.revision}", start is None, [wire(r) for r in rows])


def purge_tombstones(session: Session, site: Site, now: datetime, keep_days: float) -> int:
    """Delete revoked passes older than the retention; cursors before them then get a full list."""
    cutoff = now - timedelta(days=keep_days)
    old = select(Pass.revision).where(Pass.site_id == site.id, Pass.revoked.is_(True),
                                      Pass.revoked_at < cutoff)
    newest = session.scalar(select(Pass.revision).where(Pass.revision.in_(old))
                            .order_by(Pass.revision.desc()).limit(1))
    if newest is None:
        return 0
    result = session.execute(delete(Pass).where(Pass.site_id == site.id, Pass.revoked.is_(True),
                                                Pass.revision <= newest))
    site.floor = max(site.floor, int(newest))
    return int(getattr(result, "rowcount", 0) or 0)
