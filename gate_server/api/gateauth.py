"""Gate authentication for the hot gate requests (sync, events) in one indexed query.

The token's gate and its site's sync state (epoch, revision, floor) come back together, as
plain values: no ORM objects, no second round trip, no cache, so a rotated or deleted token
fails on its very next request. bench/server_cpu.py measured the ORM dependency chain (a
session, a Gate lookup, a commit, then the route's own Site lookup, each in its own thread
pool hop) at most of the 3 ms of CPU per request.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

import anyio
import anyio.to_thread
from fastapi import HTTPException, Request
from sqlalchemy import Connection, Engine, bindparam, select, update
from sqlalchemy.exc import DBAPIError

from ..core import security
from ..core.timeutil import as_utc
from ..db.models import Gate, Site

USER_AGENT = re.compile(r"gate/([0-9A-Za-z.+_-]{1,48})(?:\s|$)")
CACHE_AGE_HEADER = "X-Gate-Cache-Age"
MAX_TOKEN = 256


@dataclass(frozen=True)
class GateAuth:
    """The authenticated gate and its site's sync state, read in one statement."""

    id: str
    site_id: int
    epoch: str
    revision: int
    floor: int


def unauthorised() -> HTTPException:
    return HTTPException(401, "missing or wrong bearer token",
                         headers={"WWW-Authenticate": 'Bearer realm="gate"'})


def bearer_digest(request: Request) -> str:
    """The SHA-256 of the request's bearer token (401 when absent or malformed). Async-safe:
    no I/O, so it runs on the event loop as a dependency, before any body is read."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not 0 < len(token) <= MAX_TOKEN:
        raise unauthorised()
    return security.token_hash(token)


def seen_changes(last_seen: datetime | None, version: str | None, now: datetime,
                 headers: Any, seen_write_s: float) -> dict[str, Any] | None:
    """The gate columns to write for this request, or None: last-seen is written at most
    every seen_write_s (a write per request was the largest database cost at 10,000 gates),
    at once for a new software version, and when the clock stepped back."""
    agent = USER_AGENT.match(headers.get("User-Agent", ""))
    new_version = agent.group(1) if agent else version
    if (last_seen is not None and new_version == version
            and timedelta(0) <= now - as_utc(last_seen) < timedelta(seconds=seen_write_s)):
        return None
    values: dict[str, Any] = {"last_seen_at": now, "software_version": new_version}
    age = headers.get(CACHE_AGE_HEADER, "")
    if age.isdigit() and len(age) <= 10:  # whole seconds; anything else is ignored
        values["cache_age_s"] = float(age)
    return values


T = TypeVar("T")
# Gate requests doing database work at once, per process. Not for CPU (8 or 40 measured the
# same): it bounds the connections they hold, so the pool needs no overflow churn (a new
# PostgreSQL backend per request) and N processes stay under max_connections.
DB_THREADS = 8


async def in_db_thread(state: Any, fn: Callable[..., T], *args: Any) -> T:
    """fn(*args) in a worker thread, at most DB_THREADS at once; the rest wait on the loop."""
    limiter = getattr(state, "db_limiter", None)
    if limiter is None:  # made on first use, inside the app's event loop
        limiter = state.db_limiter = anyio.CapacityLimiter(DB_THREADS)
    return await anyio.to_thread.run_sync(fn, *args, limiter=limiter)


def autocommit(engine: Engine, work: Callable[[Connection], T]) -> T:
    """work(conn) where each statement commits on its own: no BEGIN and COMMIT round trips.
    Enough for these requests: under PostgreSQL's READ COMMITTED every statement had its own
    snapshot inside a transaction as well, and each write is one statement.

    The engine does not ping a connection before use (a round trip per request, 0.2 ms of
    server CPU); instead a connection found dead (database restarted) makes SQLAlchemy drop
    the whole pool and the work runs once more on a fresh one. Safe because sync and events
    are idempotent (last-seen, ON CONFLICT DO NOTHING)."""
    for attempt in (1, 2):
        try:
            with engine.connect() as conn:
                return work(conn.execution_options(isolation_level="AUTOCOMMIT"))
        except DBAPIError as exc:
            if attempt == 2 or not exc.connection_invalidated:
                raise
    raise AssertionError("unreachable")


# Built once with a bound parameter: a statement built per request cost SQLAlchemy more
# (cache key, result-column matching) than PostgreSQL spent answering it.
_QUERY = (select(Gate.id, Gate.site_id, Gate.token_sha256, Gate.last_seen_at,
                 Gate.software_version, Site.epoch, Site.revision, Site.floor)
          .join(Site, Site.id == Gate.site_id)
          .where(Gate.token_sha256 == bindparam("digest")))

_SEEN = (update(Gate).where(Gate.id == bindparam("gid"))
         .values(last_seen_at=bindparam("last_seen_at"),
                 software_version=bindparam("software_version")))
_SEEN_AGE = _SEEN.values(cache_age_s=bindparam("cache_age_s"))


def authenticate(conn: Connection, digest: str, headers: Any, now: datetime,
                 seen_write_s: float) -> GateAuth:
    """The gate owning this token hash (401 if none), recording last-seen when due, in the
    caller's transaction."""
    row = conn.execute(_QUERY, {"digest": digest}).one_or_none()
    if row is None or not security.same_hash(row.token_sha256, digest):
        raise unauthorised()
    changes = seen_changes(row.last_seen_at, row.software_version, now, headers, seen_write_s)
    if changes is not None:
        conn.execute(_SEEN_AGE if "cache_age_s" in changes else _SEEN, {"gid": row.id, **changes})
    return GateAuth(row.id, row.site_id, row.epoch, int(row.revision), int(row.floor))


async def gate_digest(request: Request) -> str:
    """bearer_digest as a dependency that stays on the event loop (no thread pool hop)."""
    return bearer_digest(request)
