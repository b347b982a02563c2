"""Dependencies: the request's database session, the authenticated gate, the raw body."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..core import security
from ..core.config import Settings
from ..db.models import Gate
from .gateauth import (
    CACHE_AGE_HEADER,
    USER_AGENT,
    bearer_digest,
    seen_changes,
    unauthorised,
)

__all__ = ["CACHE_AGE_HEADER", "USER_AGENT", "BodyDep", "GateDep", "SessionDep", "current_gate"]


def get_session(request: Request) -> Iterator[Session]:
    with request.app.state.sessions() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def current_gate(request: Request, session: SessionDep) -> Gate:
    """The gate a bearer token belongs to, as an ORM object; records when it was last seen
    and what it runs. (Sync and events use gateauth.authenticate: one query, no ORM.)"""
    digest = bearer_digest(request)
    gate = session.scalar(select(Gate).where(Gate.token_sha256 == digest))
    if gate is None or not security.same_hash(gate.token_sha256, digest):
        raise unauthorised()
    changes = seen_changes(gate.last_seen_at, gate.software_version,
                           request.app.state.settings.clock(), request.headers,
                           request.app.state.settings.seen_write_s)
    for key, value in (changes or {}).items():
        setattr(gate, key, value)
    session.commit()  # ends the read too: routes open their own transaction
    return gate


GateDep = Annotated[Gate, Depends(current_gate)]


async def raw_body(request: Request) -> bytes:
    """Read only after authentication, so an anonymous client gets 401, not a parse error.
    The app's max_body_size has already capped it (413)."""
    return await request.body()


BodyDep = Annotated[bytes, Depends(raw_body)]
