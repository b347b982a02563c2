"""POST /v1/events: a gate's journal upload, idempotent by event id."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy import Connection

from ...services import events
from ..gateauth import authenticate, autocommit, gate_digest, in_db_thread
from ..schemas import BadBody, EventIn, parse_batch, parse_object

log = logging.getLogger(__name__)
router = APIRouter()


@router.post("/v1/events")
async def post_events(request: Request,
                      digest: Annotated[str, Depends(gate_digest)]) -> JSONResponse:
    raw = await request.body()  # app max_body_size has capped it (413)
    # All database work in one thread pool call (see credentials.py).
    return await in_db_thread(request.app.state, upload, request.app.state, digest,
                            request.headers, raw)


def upload(state: Any, digest: str, headers: Any, raw: bytes) -> JSONResponse:
    settings = state.settings
    now = settings.clock()

    def work(conn: Connection) -> tuple[str, tuple[list[str], list[str], int]]:
        gate = authenticate(conn, digest, headers, now, settings.seen_write_s)
        # Parsed only after the token is checked: an anonymous client gets 401, not 400.
        return gate.id, store(conn, gate.id, raw, now)
    gate_id, (accepted, rejected, inserted) = autocommit(state.engine, work)
    state.metrics.events_stored.inc(inserted)
    log.info("events from gate %s: %d accepted, %d rejected", gate_id, len(accepted),
             len(rejected))
    return JSONResponse({"stored": len(accepted), "accepted": accepted, "rejected": rejected})


def store(conn: Connection, gate_id: str, raw: bytes,
          now: Any) -> tuple[list[str], list[str], int]:
    """(accepted ids, rejected ids, rows new) for one upload; HTTPException for a bad body."""
    try:
        body_gate, batch = parse_batch(parse_object(raw))
    except BadBody as exc:
        raise HTTPException(400, str(exc)) from None
    if body_gate != gate_id:
        raise HTTPException(403, "gate: this token belongs to another gate")
    valid, rejected = [], []
    for event in batch:
        try:
            EventIn.model_validate(event)
        except ValidationError:
            rejected.append(event["id"])  # refused for good: the gate sets it aside
            continue
        valid.append(event)
    stored = events.store_counted(conn, gate_id, valid, now)
    accepted = list(dict.fromkeys(stored.held))  # an id sent twice in one batch is one event
    held = set(accepted)
    rejected += [e["id"] for e in valid if e["id"] not in held]  # id owned by another gate
    return accepted, rejected, stored.inserted
