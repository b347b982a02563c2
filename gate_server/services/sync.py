"""Credential sync for gates: the site's passes as a full list or a delta after a cursor.

Cursor = "<site epoch>-<revision>". A delta is an index range scan on (site_id, revision),
so it costs O(changes); the full list is sent only without a usable cursor.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ..core.timeutil import format_time
from ..db.models import Pass, Site

_CURSOR = re.compile(r"([0-9a-f]{16})-([0-9]{1,18})")


@dataclass(frozen=True)
class Page:
    cursor: str
    full: bool
    credentials: list[dict[str, Any]]


def usable_since(site: Site, since: str | None) -> int | None:
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
    key = f"{site.id}\n{site.epoch}\n{site.revision}\n{site.floor}"
    return '"' + hashlib.sha256(key.encode()).hexdigest()[:32] + '"'


def wire(row: Pass) -> dict[str, Any]:
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


def page(session: Session, site: Site, since: str | None) -> Page:
    start = usable_since(site, since)
    query = select(Pass).where(Pass.site_id == site.id)
    if start is None:
        rows = session.scalars(query.where(Pass.revoked.is_(False))
                               .order_by(Pass.revision)).all()
    else:
        rows = session.scalars(query.where(Pass.revision > start)
                               .order_by(Pass.revision)).all()
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
