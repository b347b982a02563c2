"""Server-rendered pages: the holder's pass page now; the admin pages join this module."""

from __future__ import annotations

import segno
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from ..api.deps import SessionDep
from ..core import security
from ..core.timeutil import as_utc
from ..db.models import Site
from ..services import passes

router = APIRouter()
NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
            "X-Content-Type-Options": "nosniff"}


def qr_svg(code: str) -> Markup:
    """The pass as an inline SVG: vector, so it stays crisp at any zoom on any phone."""
    qr = segno.make(code, error="m", micro=False)
    # Markup: segno's SVG is generated from the code, which is base32 (no markup possible).
    return Markup(qr.svg_inline(scale=10, border=4, dark="#000", light="#fff",
                                omitsize=True))


def _words(value: object) -> str:
    return as_utc(value).strftime("%d %B %Y, %H:%M UTC") if value is not None else ""  # type: ignore[arg-type]


@router.get("/p/{token}", response_class=HTMLResponse, include_in_schema=False)
def pass_page(request: Request, token: str, session: SessionDep) -> HTMLResponse:
    row = passes.by_page_token(session, token)
    if row is None:
        raise HTTPException(404, "no such pass", headers=NO_STORE)
    site = session.get(Site, row.site_id)
    state = passes.state_at(row, request.app.state.settings.clock())
    svg = qr_svg(security.pass_code(request.app.state.secret, row.id)) \
        if state in ("valid", "not_yet_valid") else None
    context = {"holder": row.holder, "site": site.name if site else "", "kind": row.kind,
               "state": state, "valid_from": _words(row.valid_from),
               "valid_until": _words(row.valid_until), "qr": svg}
    response: HTMLResponse = request.app.state.templates.TemplateResponse(
        request, "pass.html", context, headers=NO_STORE)
    return response
