"""Enrolment: sites, gates (with their bearer token) and admins, and the server's own settings."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from argon2 import PasswordHasher
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..core import security
from ..db.models import Admin, Gate, ServerSetting, Site

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
USER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
MODES = ("off", "soft", "hard")
DIRECTIONS = ("in", "out", "both")
ROLES = ("admin", "reception")
RESET_AT = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")
SECRET_CHECK_KEY = "secret_check"


class InputError(ValueError):
    """Bad input from the operator; the message starts with the field it is about."""


@dataclass(frozen=True)
class SiteSpec:
    name: str
    capacity: int | None = None
    limit_pct: float | None = None
    headcount: int | None = None
    occupancy: str = "off"
    anti_passback: str = "off"
    timezone: str = "UTC"
    reset_at: str | None = "03:00"     # daily occupancy reset, site-local HH:MM; None: never
    passback_minutes: int = 0          # timed anti-passback window; 0: off


def check_name(value: str, field: str) -> str:
    if not NAME.fullmatch(value):
        raise InputError(f"{field}: {value!r} must be 1-128 letters, digits, '.', '_' or '-'")
    return value


def add_site(session: Session, spec: SiteSpec, now: datetime) -> Site:
    check_name(spec.name, "NAME")
    if spec.capacity is not None and spec.limit_pct is not None:
        raise InputError("--capacity: give either --capacity or --limit with --headcount")
    if spec.capacity is not None and spec.capacity < 1:
        raise InputError("--capacity: must be at least 1")
    if spec.limit_pct is not None and (not 0 < spec.limit_pct <= 100 or spec.headcount is None):
        raise InputError("--limit: a percentage in (0, 100], and --headcount is required with it")
    if spec.headcount is not None and spec.headcount < 1:
        raise InputError("--headcount: must be at least 1")
    for field, mode in (("--occupancy", spec.occupancy), ("--anti-passback", spec.anti_passback)):
        if mode not in MODES:
            raise InputError(f"{field}: {mode!r} is not one of {', '.join(MODES)}")
    try:
        ZoneInfo(spec.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError(f"--timezone: {spec.timezone!r} is not an IANA time zone") from None
    if spec.reset_at is not None and not RESET_AT.fullmatch(spec.reset_at):
        raise InputError(f"--reset-at: {spec.reset_at!r} is not HH:MM (00:00-23:59) or 'never'")
    if not 0 <= spec.passback_minutes <= 7 * 24 * 60:
        raise InputError("--passback-minutes: from 0 (off) to 10080 (a week)")
    if session.scalar(select(Site).where(Site.name == spec.name)) is not None:
        raise InputError(f"NAME: site {spec.name!r} exists already")
    site = Site(name=spec.name, revision=0, floor=0, epoch=secrets.token_hex(8),
                timezone=spec.timezone, capacity=spec.capacity, limit_pct=spec.limit_pct,
                headcount=spec.headcount, occupancy=spec.occupancy,
                anti_passback=spec.anti_passback, created_at=now, inside=0,
                reset_at=spec.reset_at, passback_window_s=spec.passback_minutes * 60)
    session.add(site)
    session.flush()
    return site


def site_by_name(session: Session, name: str, field: str = "--site") -> Site:
    site = session.scalar(select(Site).where(Site.name == name))
    if site is None:
        raise InputError(f"{field}: no site named {name!r} (add it with `gate-server site add`)")
    return site


def add_gate(session: Session, gate_id: str, site_name: str, direction: str,
             now: datetime) -> tuple[Gate, str]:
    """A new gate and its bearer token (returned once, stored only as a hash)."""
    check_name(gate_id, "ID")
    if direction not in DIRECTIONS:
        raise InputError(f"--direction: {direction!r} is not one of {', '.join(DIRECTIONS)}")
    site = site_by_name(session, site_name)
    if session.get(Gate, gate_id) is not None:
        raise InputError(f"ID: gate {gate_id!r} exists already")
    token = security.new_gate_token()
    gate = Gate(id=gate_id, site_id=site.id, direction=direction,
                token_sha256=security.token_hash(token), created_at=now)
    session.add(gate)
    session.flush()
    return gate, token


def add_admin(session: Session, hasher: PasswordHasher, username: str, password: str,
              now: datetime, role: str = "admin") -> Admin:
    if role not in ROLES:
        raise InputError(f"--role: {role!r} is not one of {', '.join(ROLES)}")
    if not USER.fullmatch(username):
        raise InputError(f"USER: {username!r} must be 1-64 letters, digits, '.', '_', '@' or '-'")
    if len(password) < 12:
        raise InputError("--password-file: the password must be at least 12 characters")
    if session.get(Admin, username) is not None:
        raise InputError(f"USER: admin {username!r} exists already")
    admin = Admin(username=username, password_hash=hasher.hash(password), created_at=now,
                  role=role)
    session.add(admin)
    return admin


def bind_secret(session: Session, secret: bytes) -> None:
    """Record which secret this database belongs to, or refuse a different one."""
    check = security.secret_check(secret)
    row = session.get(ServerSetting, SECRET_CHECK_KEY)
    if row is None:
        session.add(ServerSetting(key=SECRET_CHECK_KEY, value=check))
    elif not security.same_hash(row.value, check):
        raise security.SecretError("the pass secret file does not belong to this database "
                                   "(pass codes would not match); use the original file")


def site_name(session: Session, site_id: int) -> str:
    site = session.get(Site, site_id)
    return site.name if site else ""
