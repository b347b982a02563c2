"""What every admin page shares: the signed-in viewer, role checks, CSRF-checked forms,
rendering, and the two refusals (to the login page, or 403)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ..api.deps import SessionDep
from . import auth
from .auth import Viewer

PAGE_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "same-origin", "X-Frame-Options": "DENY",
                "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                "style-src 'self'; script-src 'self'; frame-ancestors 'none'; "
                "form-action 'self'; base-uri 'none'"}
MAX_FIELD = 400   # characters; every field we take is far shorter


class LoginRequired(Exception):
    """No valid session: the browser goes to the login page."""


class Forbidden(Exception):
    """Signed in, but not allowed (role), or a form without the right CSRF token."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


def render(request: Request, template: str, context: dict[str, Any],
           status: int = 200) -> HTMLResponse:
    response: HTMLResponse = request.app.state.templates.TemplateResponse(
        request, template, context, status_code=status, headers=PAGE_HEADERS)
    return response


def current_viewer(request: Request, session: SessionDep) -> Viewer:
    who = auth.viewer(request, session, request.app.state.settings.clock())
    if who is None:
        raise LoginRequired()
    return who


ViewerDep = Annotated[Viewer, Depends(current_viewer)]


def admin_only(who: ViewerDep) -> Viewer:
    if not who.is_admin:
        raise Forbidden("Only an admin can manage gates, sites and users.")
    return who


AdminDep = Annotated[Viewer, Depends(admin_only)]


async def checked_form(request: Request, who: ViewerDep) -> dict[str, str]:
    """The POSTed fields, after the CSRF token matched this session's."""
    form = await request.form(max_files=0, max_fields=50)
    if not auth.csrf_ok(who.csrf, form.get("csrf")):
        raise Forbidden("The form was stale or did not come from this site; reload and retry.")
    return {k: v[:MAX_FIELD] for k, v in form.items() if isinstance(v, str)}


FormDep = Annotated[dict[str, str], Depends(checked_form)]


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303, headers=PAGE_HEADERS)


def install(app: FastAPI) -> None:
    async def to_login(request: Request, exc: Exception) -> Response:
        return see_other("/admin/login")

    async def forbidden(request: Request, exc: Exception) -> Response:
        why = exc.why if isinstance(exc, Forbidden) else "Forbidden"
        return render(request, "admin/error.html", {"who": None, "message": why}, 403)

    app.add_exception_handler(LoginRequired, to_login)
    app.add_exception_handler(Forbidden, forbidden)
    app.state.login_buckets = auth.login_buckets(app.state.settings.monotonic)
