"""Server-rendered pages: the holder's pass page now; the admin pages join this module."""

from __future__ import annotations

import base64
from pathlib import Path

import segno
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup

from ..api.deps import SessionDep
from ..core import security
from ..core.timeutil import as_utc
from ..db.models import Site
from ..services import passes, signing

router = APIRouter()
STATIC = Path(__file__).resolve().parent.parent / "static"
# the only files served: a fixed map, so no path from a URL ever reaches the file system
SCRIPTS = {"pass.js": "pass.js", "qrcode.js": "qrcode-generator-2.0.4.js"}
NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
            "X-Content-Type-Options": "nosniff"}


def qr_svg(code: str) -> Markup:
    """The pass as an inline SVG: vector, so it stays crisp at any zoom on any phone.
    Signed passes at ECC Q (what their size budget is for), plain codes at M."""
    error = "q" if code.startswith("GP1:") else "m"
    qr = segno.make(code, error=error, micro=False, boost_error=False)
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
    secret: bytes = request.app.state.secret
    state = passes.state_at(row, request.app.state.settings.clock())
    usable = state in ("valid", "not_yet_valid") and site is not None
    svg, rotating = None, None
    if usable and row.signed and row.rotating and site is not None:
        # the page draws the QR itself; it gets the static text and the per-pass secret
        rotating = {"pass": signing.static_text(session, secret, row),
                    "secret": base64.b64encode(signing.holder_secret(secret, site, row)).decode()}
    elif usable and row.signed:
        svg = qr_svg(signing.static_text(session, secret, row))
    elif usable:
        svg = qr_svg(security.pass_code(secret, row.id))
    context = {"holder": row.holder, "site": site.name if site else "", "kind": row.kind,
               "state": state, "valid_from": _words(row.valid_from),
               "valid_until": _words(row.valid_until), "qr": svg, "rotating": rotating}
    response: HTMLResponse = request.app.state.templates.TemplateResponse(
        request, "pass.html", context, headers=NO_STORE)
    return response


@router.get("/p/static/{name}", include_in_schema=False)
def page_script(name: str) -> Response:
    file = SCRIPTS.get(name)
    if file is None:
        raise HTTPException(404, "no such file")
    return Response((STATIC / file).read_bytes(), media_type="text/javascript",
                    headers={"Cache-Control": "public, max-age=3600",
                             "X-Content-Type-Options": "nosniff"})
