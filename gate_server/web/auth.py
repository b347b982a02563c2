"""Admin page sessions: server-side rows behind an HttpOnly cookie, CSRF tokens, roles and
login throttling. The cookie holds a random id; the database keeps only its SHA-256."""

from __future__ import annotations

import functools
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from fastapi import Request, Response
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ..core import security
from ..core.ratelimit import TokenBuckets
from ..core.timeutil import as_utc
from ..db.models import Admin, WebSession

COOKIE = "gs_session"
LOGIN_COOKIE = "gs_login"      # double-submit CSRF token of the login form (no session yet)
SESSION_TTL = timedelta(hours=12)
# Five tries at once, then one every 30 s, per username and per client address.
LOGIN_BURST, LOGIN_PER_S = 5.0, 1.0 / 30.0


@dataclass(frozen=True)
class Viewer:
    """Who is looking at a page, and the CSRF token their forms must carry."""

    username: str
    role: str
    csrf: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def login_buckets(monotonic: object) -> TokenBuckets:
    return TokenBuckets(LOGIN_BURST, LOGIN_PER_S, monotonic)  # type: ignore[arg-type]


def login_allowed(buckets: TokenBuckets, username: str, client: str) -> bool:
    """Both buckets are charged, so neither guessing one user from many addresses nor many
    users from one address gets past the rate."""
    by_user = buckets.take("user:" + username.lower()[:64])
    by_addr = buckets.take("addr:" + client)
    return by_user == 0.0 and by_addr == 0.0


@functools.cache
def _dummy_hash() -> str:
    # Verified against when the user does not exist, so timing does not reveal who does.
    return PasswordHasher().hash(secrets.token_hex(16))


def check_password(session: Session, username: str, password: str) -> Admin | None:
    hasher = PasswordHasher()
    admin = session.get(Admin, username) if 0 < len(username) <= 64 else None
    if admin is None:
        security.verify_password(hasher, _dummy_hash(), password)
        return None
    return admin if security.verify_password(hasher, admin.password_hash, password) else None


def start_session(session: Session, admin: Admin, now: datetime) -> str:
    """A new session for this admin; returns the cookie value (shown to nobody else)."""
    # Expired sessions are purged here, the one place sessions are created.
    session.execute(delete(WebSession).where(WebSession.expires_at < now))
    sid = secrets.token_urlsafe(32)
    session.add(WebSession(id_sha256=security.sha256_hex(sid.encode()), username=admin.username,
                           csrf=secrets.token_urlsafe(32), created_at=now,
                           expires_at=now + SESSION_TTL))
    return sid


def _cookie_hash(request: Request) -> str | None:
    sid = request.cookies.get(COOKIE, "")
    if not 20 <= len(sid) <= 100:
        return None
    return security.sha256_hex(sid.encode("utf-8", "replace"))


def viewer(request: Request, session: Session, now: datetime) -> Viewer | None:
    """The signed-in admin, or None (no cookie, unknown, expired, or the admin was removed)."""
    digest = _cookie_hash(request)
    if digest is None:
        return None
    row = session.execute(select(WebSession, Admin.role).join(
        Admin, Admin.username == WebSession.username).where(
        WebSession.id_sha256 == digest)).first()
    if row is None or as_utc(row[0].expires_at) <= now:
        return None
    return Viewer(row[0].username, row[1], row[0].csrf)


def end_session(request: Request, session: Session) -> None:
    digest = _cookie_hash(request)
    if digest is not None:
        session.execute(delete(WebSession).where(WebSession.id_sha256 == digest))


def csrf_ok(expected: str, sent: object) -> bool:
    return bool(expected) and isinstance(sent, str) and hmac.compare_digest(
        sent.encode("utf-8", "replace"), expected.encode("utf-8"))


def set_cookie(request: Request, response: Response, name: str, value: str,
               max_age: int) -> None:
    # Secure whenever the page came over TLS (serve --tls-cert); plain http is loopback only.
    response.set_cookie(name, value, max_age=max_age, path="/", httponly=True,
                        samesite="strict" if name == LOGIN_COOKIE else "lax",
                        secure=request.url.scheme == "https")
