"""Dependencies: the request's database session, the authenticated gate, the raw body."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta, timezone
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..core import security
from ..core.config import Settings
from ..db.models import Gate

USER_AGENT = re.compile(r"gate/([0-9A-Za-z.+_-]{1,48})(?:\s|$)")
CACHE_AGE_HEADER = "X-Gate-Cache-Age"


def get_session(request: Request) -> Iterator[Session]:
    with request.app.state.sessions() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _unauthorised() -> HTTPException:
    return HTTPException(401, "missing or wrong bearer token",
                         headers={"WWW-Authenticate": 'Bearer realm="gate"'})


def current_gate(request: Request, session: SessionDep) -> Gate:
    """The gate a bearer token belongs to; records when it was last seen and what it runs."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not 0 < len(token) <= 256:
        raise _unauthorised()
    digest = security.token_hash(token)
    gate = session.scalar(select(Gate).where(Gate.token_sha256 == digest))
    if gate is None or not security.same_hash(gate.token_sha256, digest):
        raise _unauthorised()
    settings = request.app.state.settings
    now = settings.clock()
    agent = USER_AGENT.match(request.headers.get("User-Agent", ""))
    version = agent.group(1) if agent else gate.software_version
    # Throttled: an UPDATE and a commit on every request were the largest database cost at
    # 10,000 gates (bench/server_scale.py); last-seen within seen_write_s is precise enough
    # for "online" (a window of several minutes). A clock that stepped back also writes.
    seen = gate.last_seen_at
    if seen is not None and seen.tzinfo is None:  # SQLite hands back naive UTC
        seen = seen.replace(tzinfo=timezone.utc)
    if (seen is None or version != gate.software_version
            or not timedelta(0) <= now - seen < timedelta(seconds=settings.seen_write_s)):
        gate.last_seen_at, gate.software_version = now, version
        age = request.headers.get(CACHE_AGE_HEADER, "")
        if age.isdigit() and len(age) <= 10:  # whole seconds; anything else is ignored
            gate.cache_age_s = float(age)
    session.commit()  # ends the read too: routes open their own transaction
    return gate


GateDep = Annotated[Gate, Depends(current_gate)]


async def raw_body(request: Request) -> bytes:
    """Read only after authentication, so an anonymous client gets 401, not a parse error.
    The app's max_body_size has already capped it (413)."""
    return await request.body()


BodyDep = Annotated[bytes, Depends(raw_body)]
