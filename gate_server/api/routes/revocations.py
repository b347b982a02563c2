"""GET /v1/revocations?since=CURSOR: revoked signed passes of the gate's site, by delta."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse

from ...db.models import Site
from ...services import revocations
from ..deps import GateDep, SessionDep

router = APIRouter()


@router.get("/v1/revocations")
def get_revocations(request: Request, gate: GateDep, session: SessionDep,
                    since: Annotated[str | None, Query(max_length=64)] = None) -> JSONResponse:
    with session.begin():  # one snapshot: the cursor must match the ids sent with it
        site = session.get(Site, gate.site_id)
        if site is None:
            raise HTTPException(500, "gate without a site")
        page = revocations.delta(session, site, since, request.app.state.settings.clock())
    return JSONResponse({"cursor": page.cursor, "full": page.full, "revoked": page.revoked,
                         "unrevoked": page.unrevoked}, headers={"Cache-Control": "no-store"})
