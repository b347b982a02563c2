"""POST /v1/verify: the online decision for one scan, rate-limited per gate."""

from __future__ import annotations

import logging
import math

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from ...services import events, occupancy, verify
from ..deps import BodyDep, GateDep, SessionDep
from ..schemas import BadBody, VerifyIn, field_errors, parse_object

log = logging.getLogger(__name__)
router = APIRouter()


@router.post("/v1/verify")
def post_verify(request: Request, gate: GateDep, raw: BodyDep,
                session: SessionDep) -> JSONResponse:
    state = request.app.state
    wait = state.buckets.take(gate.id)
    if wait > 0:
        state.metrics.rate_limited.inc()
        if state.buckets.should_alarm(gate.id, state.settings.rate.alarm_interval_s):
            events.alarm(session, gate.id, "verify_flood", state.settings.clock())
            session.commit()
        raise HTTPException(429, "too many verifications from this gate",
                            headers={"Retry-After": str(max(1, math.ceil(wait)))})
    try:
        body = VerifyIn.model_validate(parse_object(raw))
    except ValidationError as exc:
        raise HTTPException(422, field_errors(exc)) from None
    except BadBody as exc:
        raise HTTPException(400, str(exc)) from None
    if body.gate != gate.id:
        raise HTTPException(403, "gate: this token belongs to another gate")
    try:
        code = body.payload()
    except BadBody as exc:
        raise HTTPException(400, str(exc)) from None
    now = state.settings.clock()
    verdict = verify.decide(session, gate, code, now, state.secret)
    reply = verdict.to_json()
    if verdict.decision == "grant" and verdict.credential_id:
        outcome = occupancy.on_grant(session, gate, verdict.credential_id, now,
                                     state.settings.occupancy)
        if outcome is not None:
            reply.update(occupancy.verify_fields(outcome))
            reply = {k: v for k, v in reply.items() if v is not None}
        session.commit()
    state.metrics.verify.labels(reply["decision"], reply["reason"]).inc()
    log.info("verify at gate %s: %s (%s) pass %s", gate.id, reply["decision"], reply["reason"],
             verdict.credential_id or "-")
    return JSONResponse(reply, headers={"Cache-Control": "no-store"})
