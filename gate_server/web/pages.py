"""Admin pages for reception and admins: sign in and out, passes (issue, show, print,
revoke) and the live entrance events."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..api.deps import SessionDep
from ..core import security
from ..core.timeutil import as_utc
from ..db.models import Event, Pass, Site
from ..services import passes, signing
from ..services.admin import InputError
from . import auth
from .common import PAGE_HEADERS, FormDep, ViewerDep, render, see_other
from .routes import qr_svg

router = APIRouter(prefix="/admin", include_in_schema=False)
LIST_LIMIT = 200
EVENT_LIMIT = 100
FIELD_NAMES = {"--holder": "Holder", "--kind": "Kind", "--site": "Site", "--from": "Valid from",
               "--until": "Valid until", "ID": "Pass"}


def friendly(exc: InputError) -> str:
    """The services name CLI flags; the form names its labels."""
    field, sep, rest = str(exc).partition(": ")
    return f"{FIELD_NAMES.get(field, field)}: {rest}" if sep else str(exc)


def form_time(value: str, field: str) -> datetime | None:
    """A datetime-local field, which carries no zone: the form says it is UTC."""
    if not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InputError(f"{field}: {value!r} is not a date and time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def stamp(value: datetime | None) -> str:
    return as_utc(value).strftime("%Y-%m-%d %H:%M UTC") if value is not None else ""


def site_names(session: Session) -> dict[int, str]:
    return {s.id: s.name for s in session.scalars(select(Site).order_by(Site.name))}


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request) -> Response:
    token = security.new_gate_token()
    response = render(request, "admin/login.html", {"who": None, "csrf": token, "error": ""})
    auth.set_cookie(request, response, auth.LOGIN_COOKIE, token, 3600)
    return response


@router.post("/login")
async def login(request: Request, session: SessionDep) -> Response:
    form = await request.form(max_files=0, max_fields=10)
    username, password = str(form.get("username", ""))[:64], str(form.get("password", ""))[:256]
    if not auth.csrf_ok(request.cookies.get(auth.LOGIN_COOKIE, ""), form.get("csrf")):
        return render(request, "admin/error.html", {"who": None, "message":
                      "The sign-in form was stale; reload it and try again."}, 403)
    client = request.client.host if request.client else "?"
    if not auth.login_allowed(request.app.state.login_buckets, username, client):
        response = render(request, "admin/login.html", {"who": None, "error":
                          "Too many attempts. Wait a minute and try again.",
                          "csrf": form.get("csrf")}, 429)
        response.headers["Retry-After"] = "30"
        return response
    account = auth.check_password(session, username, password)
    if account is None:
        return render(request, "admin/login.html", {"who": None, "csrf": form.get("csrf"),
                      "error": "Wrong username or password."}, 401)
    sid = auth.start_session(session, account, request.app.state.settings.clock())
    session.commit()
    redirect = see_other("/admin/passes")
    auth.set_cookie(request, redirect, auth.COOKIE, sid, int(auth.SESSION_TTL.total_seconds()))
    redirect.delete_cookie(auth.LOGIN_COOKIE, path="/")
    return redirect


@router.post("/logout")
def logout(request: Request, session: SessionDep, form: FormDep) -> Response:
    auth.end_session(request, session)
    session.commit()
    response = see_other("/admin/login")
    response.delete_cookie(auth.COOKIE, path="/")
    return response


@router.get("", response_class=HTMLResponse)
def home(who: ViewerDep) -> Response:
    return see_other("/admin/passes")


def _pass_list(request: Request, session: Session, who: auth.Viewer, error: str = "",
               status: int = 200) -> Response:
    now = request.app.state.settings.clock()
    sites = site_names(session)
    rows = [{"id": p.id, "holder": p.holder, "kind": p.kind, "site": sites.get(p.site_id, ""),
             "until": stamp(p.valid_until), "state": passes.state_at(p, now)}
            for p in session.scalars(select(Pass).order_by(Pass.created_at.desc(), Pass.id)
                                     .limit(LIST_LIMIT))]
    return render(request, "admin/passes.html", {
        "who": who, "rows": rows, "sites": list(sites.values()), "kinds": passes.KINDS,
        "error": error}, status)


@router.get("/passes", response_class=HTMLResponse)
def pass_list(request: Request, session: SessionDep, who: ViewerDep) -> Response:
    return _pass_list(request, session, who)


@router.post("/passes")
def pass_issue(request: Request, session: SessionDep, who: ViewerDep, form: FormDep) -> Response:
    try:
        spec = passes.IssueSpec(form.get("site", ""), form.get("holder", ""),
                                form.get("kind", "visitor"),
                                form_time(form.get("valid_from", ""), "--from"),
                                form_time(form.get("valid_until", ""), "--until"),
                                signed=form.get("type", "signed") != "plain",
                                rotating=form.get("rotating", "") == "1")
        row = passes.issue(session, request.app.state.secret, spec,
                           request.app.state.settings.clock())
    except InputError as exc:
        session.rollback()
        return _pass_list(request, session, who, friendly(exc), 400)
    session.commit()
    return see_other(f"/admin/passes/{row.id}")


def _pass_context(request: Request, session: Session, pass_id: str) -> dict[str, Any]:
    row = passes.get(session, pass_id)
    secret = request.app.state.secret
    state = passes.state_at(row, request.app.state.settings.clock())
    site = session.get(Site, row.site_id)
    return {"p": row, "site": site.name if site else "", "state": state,
            "valid_from": stamp(row.valid_from), "valid_until": stamp(row.valid_until),
            "revoked_at": stamp(row.revoked_at),
            # The holder page's own token is the one secret a URL may carry.
            "page_url": f"/p/{security.page_token(secret, row.id)}",
            # a rotating pass has no fixed QR: its code lives on the holder page
            "qr": None if row.rotating or state not in ("valid", "not_yet_valid") else
            qr_svg(signing.static_text(session, secret, row) if row.signed
                   else security.pass_code(secret, row.id))}


@router.get("/passes/{pass_id}", response_class=HTMLResponse)
def pass_detail(request: Request, pass_id: str, session: SessionDep, who: ViewerDep) -> Response:
    try:
        context = _pass_context(request, session, pass_id)
    except InputError:
        return render(request, "admin/error.html", {"who": who, "message": "No such pass."}, 404)
    return render(request, "admin/pass.html", {"who": who, **context})


@router.get("/passes/{pass_id}/print", response_class=HTMLResponse)
def pass_print(request: Request, pass_id: str, session: SessionDep, who: ViewerDep) -> Response:
    try:
        context = _pass_context(request, session, pass_id)
    except InputError:
        return render(request, "admin/error.html", {"who": who, "message": "No such pass."}, 404)
    return render(request, "admin/print.html", {"who": who, **context})


@router.post("/passes/{pass_id}/revoke")
def pass_revoke(request: Request, pass_id: str, session: SessionDep, who: ViewerDep,
                form: FormDep) -> Response:
    try:
        passes.revoke(session, pass_id, request.app.state.settings.clock())
    except InputError:
        return render(request, "admin/error.html", {"who": who, "message": "No such pass."}, 404)
    session.commit()
    return see_other(f"/admin/passes/{pass_id}")


def event_rows(session: Session) -> list[dict[str, str]]:
    """The newest events; bodies are whatever a gate sent, so every field is optional text."""
    out = []
    for ev in session.scalars(select(Event).order_by(Event.n.desc()).limit(EVENT_LIMIT)):
        try:
            body = json.loads(ev.body)
        except ValueError:
            body = {}
        body = body if isinstance(body, dict) else {}
        what = body.get("verdict") or body.get("event") or body.get("alarm") or ""
        out.append({"at": ev.at, "gate": ev.gate_id, "kind": ev.kind, "what": str(what),
                    "reason": str(body.get("reason", "")), "label": str(body.get("label", "")),
                    "source": str(body.get("source", ""))})
    return out


@router.get("/events", response_class=HTMLResponse)
def events_page(request: Request, session: SessionDep, who: ViewerDep) -> Response:
    return render(request, "admin/events.html", {"who": who, "events": event_rows(session)})


@router.get("/events/rows", response_class=HTMLResponse)
def events_fragment(request: Request, session: SessionDep, who: ViewerDep) -> Response:
    """The table body alone, fetched every few seconds by static/admin.js."""
    response: HTMLResponse = request.app.state.templates.TemplateResponse(
        request, "admin/event_rows.html", {"events": event_rows(session)}, headers=PAGE_HEADERS)
    return response
