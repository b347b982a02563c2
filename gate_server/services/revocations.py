"""Revoked signed passes for gates: a delta by cursor (O(changes) on the site's revision
index), and the revocation set as the server's own PassVerifier reads it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..db.models import Pass, Site
from .sync import usable_since


@dataclass(frozen=True)
class Delta:
    cursor: str
    full: bool
    revoked: list[str]
    unrevoked: list[str]


def delta(session: Session, site: Site, since: str | None, now: datetime) -> Delta:
    """Revoked pass ids of the site's signed passes after ``since`` (the same cursor space
    as /v1/credentials: every pass change bumps the site's revision). Without a usable
    cursor, the whole set, leaving out passes that have expired anyway. gate-server never
    un-revokes, so ``unrevoked`` stays empty; gates apply it all the same."""
    start = usable_since(site, since)
    query = select(Pass.id).where(Pass.site_id == site.id, Pass.signed.is_(True),
                                  Pass.revoked.is_(True))
    if start is None:
        query = query.where(Pass.valid_until > now)
    else:
        query = query.where(Pass.revision > start)
    ids = list(session.scalars(query.order_by(Pass.revision)))
    return Delta(f"{site.epoch}-{site.revision}", start is None, ids, [])


class DbRevocations:
    """``revoked(pass_id)`` straight from the database: the server knows a revocation the
    moment it commits, before any gate has synced it."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def revoked(self, pass_id: bytes) -> bool:
        flag = self.session.scalar(select(Pass.revoked).where(Pass.id == pass_id.hex()))
        return bool(flag)
