"""Admin: live occupancy per site (a page and an HTML partial to poll) and the manual
correction. Self-contained: HTTP Basic against the admins table until the admin pages'
own login replaces it; every correction is journaled with the admin's name."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import select

from ..api.deps import SessionDep
from ..core import security
from ..db.models import Admin, Site
from ..services import occupancy

router = APIRouter()
HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
           "X-Frame-Options": "DENY"}


def _challenge() -> HTTPException:
    return HTTPException(401, "admin login required",
                         headers={"WWW-Authenticate": 'Basic realm="gate admin"'})


def current_admin(request: Request, session: SessionDep) -> str:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic" or not 0 < len(value) <= 512:
        raise _challenge()
    try:
        user, sep, password = base64.b64decode(value.strip(), validate=True).decode(
            "utf-8").partition(":")
    except (binascii.Error, ValueError):
        raise _challenge() from None
    row = session.get(Admin, user) if sep and user else None
    hasher = getattr(request.app.state, "hasher", None) or security.password_hasher()
    if row is None or not security.verify_password(hasher, row.password_hash, password):
        raise _challenge()
    return user


AdminDep = Annotated[str, Depends(current_admin)]


def _rows(request: Request, session: Any) -> list[dict[str, Any]]:
    now = request.app.state.settings.clock()
    out = []
    for site in session.scalars(select(Site).order_by(Site.name)).all():
        c = occupancy.count(session, site, now)
        out.append({"name": site.name, "mode": site.occupancy, "capacity": c.capacity,
                    "inside": c.inside, "holds": c.holds, "leased": c.leased, "free": c.free,
                    "full": c.free is not None and c.free <= 0})
    session.commit()
    return out


def _render(request: Request, session: Any, user: str, full_page: bool) -> HTMLResponse:
    context = {"sites": _rows(request, session), "user": user, "full_page": full_page}
    response: HTMLResponse = request.app.state.templates.TemplateResponse(
        request, "occupancy.html" if full_page else "occupancy_partial.html", context, headers=HEADERS)
    return response


@router.get("/admin/occupancy", response_class=HTMLResponse, include_in_schema=False)
def occupancy_page(request: Request, user: AdminDep, session: SessionDep) -> HTMLResponse:
    return _render(request, session, user, True)


@router.get("/admin/occupancy/partial", response_class=HTMLResponse, include_in_schema=False)
def occupancy_partial(request: Request, user: AdminDep, session: SessionDep) -> HTMLResponse:
    return _render(request, session, user, False)


@router.post("/admin/occupancy/{name}/correct", include_in_schema=False)
def occupancy_correct(request: Request, name: str, user: AdminDep, session: SessionDep,
                      count: Annotated[int, Form(ge=0, le=10_000_000)],
                      note: Annotated[str, Form(max_length=200)] = "") -> RedirectResponse:
    # Basic credentials are not sent cross-site by a form without the browser asking, but
    # a same-origin check costs nothing and stops a forged form post.
    origin = request.headers.get("Origin")
    if origin is not None and origin != str(request.base_url).rstrip("/"):
        raise HTTPException(403, "cross-site form refused")
    site = session.scalar(select(Site).where(Site.name == name))
    if site is None:
        raise HTTPException(404, "no such site")
    occupancy.correct(session, site, count, user, request.app.state.settings.clock(), note)
    session.commit()
    return RedirectResponse("/admin/occupancy", status_code=303, headers=HEADERS)
