"""GET /v1/credentials: the gate's site's passes, full or delta, with ETag / If-None-Match."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse

from ...db.models import Site
from ...services import sync
from ..deps import GateDep, SessionDep

router = APIRouter()


def etag_matches(header: str | None, etag: str) -> bool:
    """Weak comparison, as RFC 9110 asks for If-None-Match."""
    if not header:
        return False
    return any(c.strip() == "*" or c.strip().removeprefix("W/") == etag for c in header.split(","))


@router.get("/v1/credentials")
def get_credentials(request: Request, gate: GateDep, session: SessionDep,
                    gate_param: Annotated[str | None, Query(alias="gate", max_length=128)] = None,
                    since: Annotated[str | None, Query(max_length=64)] = None) -> Response:
    if gate_param is not None and gate_param != gate.id:
        raise HTTPException(403, "gate: this token belongs to another gate")
    with session.begin():  # one snapshot: the cursor must match the rows sent with it
        site = session.get(Site, gate.site_id)
        if site is None:
            raise HTTPException(500, "gate without a site")
        tag = sync.etag(site)
        # The up-to-date gate gets its 304 without a single pass being read.
        if etag_matches(request.headers.get("If-None-Match"), tag):
            return Response(status_code=304, headers={"ETag": tag})
        page = sync.page(session, site, since)
    return JSONResponse({"cursor": page.cursor, "full": page.full,
                         "credentials": page.credentials},
                        headers={"ETag": tag, "Cache-Control": "no-cache"})
