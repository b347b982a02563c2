"""Admin-only pages: gates (register one, its token shown once; health), sites and users."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..api.deps import SessionDep
from ..core import security
from ..core.timeutil import as_utc
from ..db.models import Admin, Gate, Site
from ..services import admin
from ..services.admin import InputError
from .auth import Viewer
from .common import AdminDep, FormDep, render, see_other
from .pages import site_names, stamp

router = APIRouter(prefix="/admin", include_in_schema=False)
# A gate verifies and syncs at least every sync_interval_s (60 s by default): three missed
# rounds and reception should know.
ONLINE_WINDOW = timedelta(seconds=180)
FIELD_NAMES = {"ID": "Gate id", "NAME": "Name", "USER": "Username", "--site": "Site",
               "--direction": "Direction", "--timezone": "Time zone", "--capacity": "Capacity",
               "--password-file": "Password", "--role": "Role"}


def friendly(exc: InputError) -> str:
    field, sep, rest = str(exc).partition(": ")
    return f"{FIELD_NAMES.get(field, field)}: {rest}" if sep else str(exc)


def _gates(request: Request, session: Session, who: Viewer, error: str = "",
           status: int = 200) -> Response:
    now = request.app.state.settings.clock()
    sites = site_names(session)
    rows = []
    for g in session.scalars(select(Gate).order_by(Gate.id)):
        seen = as_utc(g.last_seen_at) if g.last_seen_at else None
        rows.append({"id": g.id, "site": sites.get(g.site_id, ""), "direction": g.direction,
                     "seen": stamp(seen) or "never",
                     "online": seen is not None and now - seen <= ONLINE_WINDOW,
                     "cache_age": "" if g.cache_age_s is None else f"{g.cache_age_s:.0f} s",
                     "version": g.software_version or ""})
    return render(request, "admin/gates.html", {"who": who, "rows": rows,
                  "sites": list(sites.values()), "error": error}, status)


@router.get("/gates", response_class=HTMLResponse)
def gate_list(request: Request, session: SessionDep, who: AdminDep) -> Response:
    return _gates(request, session, who)


@router.post("/gates")
def gate_add(request: Request, session: SessionDep, who: AdminDep, form: FormDep) -> Response:
    try:
        gate, token = admin.add_gate(session, form.get("id", ""), form.get("site", ""),
                                     form.get("direction", "both"),
                                     request.app.state.settings.clock())
    except InputError as exc:
        session.rollback()
        return _gates(request, session, who, friendly(exc), 400)
    session.commit()
    # Shown in this one response (no-store), never again: the database keeps only its hash.
    return render(request, "admin/gate_token.html", {"who": who, "gate": gate.id,
                  "token": token}, 201)


def _sites(request: Request, session: Session, who: Viewer, error: str = "",
           status: int = 200) -> Response:
    rows = list(session.scalars(select(Site).order_by(Site.name)))
    return render(request, "admin/sites.html", {"who": who, "rows": rows, "error": error},
                  status)


@router.get("/sites", response_class=HTMLResponse)
def site_list(request: Request, session: SessionDep, who: AdminDep) -> Response:
    return _sites(request, session, who)


@router.post("/sites")
def site_add(request: Request, session: SessionDep, who: AdminDep, form: FormDep) -> Response:
    try:
        capacity = form.get("capacity", "").strip()
        if capacity and not capacity.isdigit():
            raise InputError("--capacity: a whole number")
        admin.add_site(session, admin.SiteSpec(
            form.get("name", ""), int(capacity) if capacity else None,
            timezone=form.get("timezone", "").strip() or "UTC"),
            request.app.state.settings.clock())
    except InputError as exc:
        session.rollback()
        return _sites(request, session, who, friendly(exc), 400)
    session.commit()
    return see_other("/admin/sites")


def _users(request: Request, session: Session, who: Viewer, error: str = "",
           status: int = 200) -> Response:
    rows = list(session.scalars(select(Admin).order_by(Admin.username)))
    return render(request, "admin/users.html", {"who": who, "rows": rows, "error": error,
                  "roles": admin.ROLES}, status)


@router.get("/users", response_class=HTMLResponse)
def user_list(request: Request, session: SessionDep, who: AdminDep) -> Response:
    return _users(request, session, who)


@router.post("/users")
def user_add(request: Request, session: SessionDep, who: AdminDep, form: FormDep) -> Response:
    try:
        admin.add_admin(session, security.password_hasher(), form.get("username", ""),
                        form.get("password", ""), request.app.state.settings.clock(),
                        form.get("role", ""))
    except InputError as exc:
        session.rollback()
        return _users(request, session, who, friendly(exc), 400)
    session.commit()
    return see_other("/admin/users")
