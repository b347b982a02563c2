"""Admin: live occupancy per site (a page, and its rows for the page to poll) and the manual
correction. Both roles may watch; only an admin may correct, and every correction is
journaled with the admin's name."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..api.deps import SessionDep
from ..db.models import Site
from ..services import occupancy
from .auth import Viewer
from .common import PAGE_HEADERS, AdminDep, FormDep, ViewerDep, render, see_other

router = APIRouter(prefix="/admin", include_in_schema=False)
MAX_COUNT = 10_000_000
MAX_NOTE = 200


def _rows(request: Request, session: Session) -> list[dict[str, Any]]:
    now = request.app.state.settings.clock()
    out = []
    for site in session.scalars(select(Site).order_by(Site.name)).all():
        c = occupancy.count(session, site, now)
        out.append({"name": site.name, "mode": site.occupancy, "capacity": c.capacity,
                    "inside": c.inside, "holds": c.holds, "leased": c.leased, "free": c.free,
                    "full": c.free is not None and c.free <= 0})
    session.commit()  # count() may settle expired holds and leases
    return out


def _page(request: Request, session: Session, who: Viewer, error: str = "",
          status: int = 200) -> Response:
    return render(request, "admin/occupancy.html",
                  {"who": who, "sites": _rows(request, session), "error": error}, status)


@router.get("/occupancy", response_class=HTMLResponse)
def occupancy_page(request: Request, session: SessionDep, who: ViewerDep) -> Response:
    return _page(request, session, who)


@router.get("/occupancy/rows", response_class=HTMLResponse)
def occupancy_rows(request: Request, session: SessionDep, who: ViewerDep) -> Response:
    """The table body alone, fetched every few seconds by static/admin.js."""
    response: HTMLResponse = request.app.state.templates.TemplateResponse(
        request, "admin/occupancy_rows.html", {"who": who, "sites": _rows(request, session)},
        headers=PAGE_HEADERS)
    return response


def _count(text: str) -> int | None:
    value = text.strip()
    if not value.isascii() or not value.isdigit() or len(value) > 8:
        return None
    number = int(value)
    return number if number <= MAX_COUNT else None


@router.post("/occupancy/{name}/correct")
def occupancy_correct(request: Request, name: str, session: SessionDep, who: AdminDep,
                      form: FormDep) -> Response:
    site = session.scalar(select(Site).where(Site.name == name))
    if site is None:
        return render(request, "admin/error.html", {"who": who, "message": "No such site."}, 404)
    count = _count(form.get("count", ""))
    if count is None:
        return _page(request, session, who,
                     f"People inside: a whole number from 0 to {MAX_COUNT:,}.", 400)
    note = form.get("note", "").strip()
    if len(note) > MAX_NOTE:
        return _page(request, session, who, f"Note: at most {MAX_NOTE} characters.", 400)
    occupancy.correct(session, site, count, who.username, request.app.state.settings.clock(),
                      note)
    session.commit()
    return see_other("/admin/occupancy")
