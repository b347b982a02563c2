"""Occupancy for gates: POST /v1/leases (report counters, get a lease), POST /v1/passages
(did the granted door open), GET /v1/occupancy (the gate's site count)."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ...db.models import Site
from ...services import leases, occupancy
from ..deps import BodyDep, GateDep, SessionDep
from ..schemas import MAX_ID, BadBody, field_errors, parse_object

log = logging.getLogger(__name__)
router = APIRouter()
Counter = Annotated[int, Field(ge=0, lt=2**53)]
MAX_PASSAGES = 1000


class LeaseIn(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    gate: Annotated[str, Field(min_length=1, max_length=MAX_ID)]
    epoch: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9]+$")]
    spent: Counter
    unused: Counter
    exits: Counter
    last_seq: Counter
    active: bool


class PassageIn(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    id: Annotated[str, Field(min_length=1, max_length=32)]
    opened: bool


class PassagesIn(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    gate: Annotated[str, Field(min_length=1, max_length=MAX_ID)]
    passages: Annotated[list[PassageIn], Field(max_length=MAX_PASSAGES)]


def _body(model: type[BaseModel], raw: bytes) -> Any:
    try:
        return model.model_validate(parse_object(raw))
    except ValidationError as exc:
        raise HTTPException(422, field_errors(exc)) from None
    except BadBody as exc:
        raise HTTPException(400, str(exc)) from None


def _own(gate_id: str, body_gate: str) -> None:
    if body_gate != gate_id:
        raise HTTPException(403, "gate: this token belongs to another gate")


@router.post("/v1/leases")
def post_leases(request: Request, gate: GateDep, raw: BodyDep,
                session: SessionDep) -> dict[str, Any]:
    body: LeaseIn = _body(LeaseIn, raw)
    _own(gate.id, body.gate)
    settings = request.app.state.settings
    report = leases.Report(body.epoch, body.spent, body.unused, body.exits, body.last_seq,
                           body.active)
    try:
        reply = leases.renew(session, gate, report, settings.clock(), settings.occupancy)
    except leases.ReportError as exc:
        session.rollback()
        raise HTTPException(400, str(exc)) from None
    session.commit()
    lease = reply["lease"]
    log.info("lease for gate %s: %s", gate.id,
             f"seq {lease['seq']} places {lease['places']}" if lease else "none (out gate)")
    return reply


@router.post("/v1/passages")
def post_passages(request: Request, gate: GateDep, raw: BodyDep,
                  session: SessionDep) -> dict[str, Any]:
    body: PassagesIn = _body(PassagesIn, raw)
    _own(gate.id, body.gate)
    done = occupancy.report_passages(session, gate, [(p.id, p.opened) for p in body.passages],
                                     request.app.state.settings.clock())
    session.commit()
    return {"accepted": done}


@router.get("/v1/occupancy")
def get_occupancy(request: Request, gate: GateDep, session: SessionDep) -> dict[str, Any]:
    site = session.get(Site, gate.site_id)
    if site is None:
        raise HTTPException(404, "this gate's site is gone")
    c = occupancy.count(session, site, request.app.state.settings.clock())
    session.commit()  # lapsed holds are written
    return {"site": site.name, "occupancy": site.occupancy, "capacity": c.capacity,
            "inside": c.inside, "holds": c.holds, "leased": c.leased, "free": c.free}
