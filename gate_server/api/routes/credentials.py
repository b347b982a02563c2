"""GET /v1/credentials: the gate's site's passes, full or delta, with ETag / If-None-Match."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import Connection

from ...services import sync
from ..gateauth import authenticate, autocommit, gate_digest, in_db_thread

router = APIRouter()


def etag_matches(header: str | None, etag: str) -> bool:
    """Weak comparison, as RFC 9110 asks for If-None-Match."""
    if not header:
        return False
    return any(c.strip() == "*" or c.strip().removeprefix("W/") == etag for c in header.split(","))


@router.get("/v1/credentials")
async def get_credentials(request: Request, digest: Annotated[str, Depends(gate_digest)],
                          gate_param: Annotated[str | None,
                                                Query(alias="gate", max_length=128)] = None,
                          since: Annotated[str | None, Query(max_length=64)] = None) -> Response:
    # async, with all database work in one thread pool call: FastAPI ran each sync
    # dependency and the route in a hop of their own (four per request).
    return await in_db_thread(request.app.state, answer, request.app.state, digest,
                            request.headers, gate_param, since)


def answer(state: Any, digest: str, headers: Any, gate_param: str | None,
           since: str | None) -> Response:
    settings = state.settings

    def work(conn: Connection) -> Response:
        # The site state (cursor) is read with the token, before the rows sent with it.
        gate = authenticate(conn, digest, headers, settings.clock(), settings.seen_write_s)
        if gate_param is not None and gate_param != gate.id:
            raise HTTPException(403, "gate: this token belongs to another gate")
        tag = sync.etag_of(gate.site_id, gate)
        # The up-to-date gate gets its 304 without a single pass being read.
        if etag_matches(headers.get("If-None-Match"), tag):
            return Response(status_code=304, headers={"ETag": tag})
        page = sync.page(conn, gate.site_id, gate, since)
        return JSONResponse({"cursor": page.cursor, "full": page.full,
                             "credentials": page.credentials},
                            headers={"ETag": tag, "Cache-Control": "no-cache"})
    return autocommit(state.engine, work)
