"""POST /v1/events: a gate's journal upload, idempotent by event id."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from pydantic import ValidationError

from ...services import events
from ..deps import BodyDep, GateDep, SessionDep
from ..schemas import BadBody, EventIn, parse_batch, parse_object

log = logging.getLogger(__name__)
router = APIRouter()


@router.post("/v1/events")
def post_events(request: Request, gate: GateDep, raw: BodyDep,
                session: SessionDep) -> dict[str, Any]:
    try:
        gate_id, batch = parse_batch(parse_object(raw))
    except BadBody as exc:
        raise HTTPException(400, str(exc)) from None
    if gate_id != gate.id:
        raise HTTPException(403, "gate: this token belongs to another gate")
    valid, rejected = [], []
    for event in batch:
        try:
            EventIn.model_validate(event)
        except ValidationError:
            rejected.append(event["id"])  # refused for good: the gate sets it aside
            continue
        valid.append(event)
    stored = events.store_counted(session, gate.id, valid, request.app.state.settings.clock())
    session.commit()
    request.app.state.metrics.events_stored.inc(stored.inserted)
    accepted = stored.held
    accepted = list(dict.fromkeys(accepted))  # an id sent twice in one batch is one event
    held = set(accepted)
    rejected += [e["id"] for e in valid if e["id"] not in held]  # id owned by another gate
    log.info("events from gate %s: %d accepted, %d rejected", gate.id, len(accepted),
             len(rejected))
    return {"stored": len(accepted), "accepted": accepted, "rejected": rejected}
