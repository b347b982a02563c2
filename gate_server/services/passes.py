"""Passes: issue, revoke, look up; the plain code is derived from the server secret on demand."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ..core import security
from ..core.timeutil import as_utc, format_time
from ..db.models import Pass, Site
from . import signing
from .admin import InputError, site_by_name

KINDS = ("staff", "visitor", "contractor")
MAX_HOLDER = 200
SIGNED_ID_BYTES = 5               # 40 random bits, checked unique; short for the QR code
DEFAULT_SIGNED_DAYS = 365         # a signed pass always ends (valid_until is required)


@dataclass(frozen=True)
class IssueSpec:
    site: str
    holder: str
    kind: str = "visitor"
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    signed: bool = False           # GP1 signed pass (the CLI's default) or a plain code
    rotating: bool = False         # signed only: the shown code changes every 30 s


def bump_revision(session: Session, site_id: int) -> int:
    """The site's next revision; the UPDATE locks the site row until commit, so two writers
    never hand out the same number (PostgreSQL row lock, SQLite database lock)."""
    return int(session.execute(
        update(Site).where(Site.id == site_id).values(revision=Site.revision + 1)
        .returning(Site.revision)).scalar_one())


def issue(session: Session, secret: bytes, spec: IssueSpec, now: datetime) -> Pass:
    holder = spec.holder.strip()
    if not holder or len(holder) > MAX_HOLDER or not holder.isprintable():
        raise InputError(f"--holder: 1-{MAX_HOLDER} printable characters")
    if spec.kind not in KINDS:
        raise InputError(f"--kind: {spec.kind!r} is not one of {', '.join(KINDS)}")
    if spec.valid_from and spec.valid_until and spec.valid_until <= spec.valid_from:
        raise InputError("--until: must be later than --from")
    if spec.rotating and not spec.signed:
        raise InputError("--rotating: only signed passes rotate (drop --plain)")
    site = site_by_name(session, spec.site)
    if spec.signed:
        return _issue_signed(session, secret, spec, site, holder, now)
    pass_id = "p" + secrets.token_hex(8)
    row = Pass(id=pass_id, site_id=site.id, holder=holder, kind=spec.kind,
               valid_from=spec.valid_from, valid_until=spec.valid_until, revoked=False,
               code_sha256=security.sha256_hex(security.pass_code(secret, pass_id).encode()),
               page_sha256=security.sha256_hex(security.page_token(secret, pass_id).encode()),
               revision=bump_revision(session, site.id), created_at=now)
    session.add(row)
    session.flush()
    return row


def _issue_signed(session: Session, secret: bytes, spec: IssueSpec, site: Site, holder: str,
                  now: datetime) -> Pass:
    start = int(now.timestamp())
    until = int((spec.valid_until or now + timedelta(days=DEFAULT_SIGNED_DAYS)).timestamp())
    # valid_from travels only for a pass that starts after signing: 6 bytes saved otherwise
    claim_from = int(spec.valid_from.timestamp()) if spec.valid_from else None
    if claim_from is not None and claim_from <= start:
        claim_from = None
    if until <= max(start, claim_from or 0):
        raise InputError("--until: a signed pass must end after it starts and after now")
    pass_id = secrets.token_hex(SIGNED_ID_BYTES)
    while session.get(Pass, pass_id) is not None:
        pass_id = secrets.token_hex(SIGNED_ID_BYTES)
    key = signing.active_key(session, secret, now)
    row = Pass(id=pass_id, site_id=site.id, holder=holder, kind=spec.kind,
               valid_from=spec.valid_from, valid_until=datetime.fromtimestamp(until, timezone.utc),
               revoked=False, signed=True, rotating=spec.rotating, kid=key.kid,
               claim_from=claim_from, claim_until=until, code_sha256="",
               page_sha256=security.sha256_hex(security.page_token(secret, pass_id).encode()),
               revision=bump_revision(session, site.id), created_at=now)
    # the hash of the static text: the database never holds the text itself
    row.code_sha256 = security.sha256_hex(signing.static_text(session, secret, row).encode())
    session.add(row)
    session.flush()
    return row


def get(session: Session, pass_id: str) -> Pass:
    row = session.get(Pass, pass_id) if len(pass_id) <= 32 else None
    if row is None:
        raise InputError(f"ID: no pass {pass_id!r}")
    return row


def revoke(session: Session, pass_id: str, now: datetime) -> Pass:
    """Revoked passes stay as tombstones (with a new revision) so delta syncs remove them."""
    row = get(session, pass_id)
    if not row.revoked:
        row.revoked, row.revoked_at = True, now
        row.revision = bump_revision(session, row.site_id)
    return row


def by_page_token(session: Session, token: str) -> Pass | None:
    if not 16 <= len(token) <= 64 or not token.isalnum():
        return None
    return session.scalar(select(Pass).where(
        Pass.page_sha256 == security.sha256_hex(token.encode("ascii"))))


def state_at(row: Pass, at: datetime) -> str:
    """valid | revoked | expired | not_yet_valid, by the given clock."""
    if row.revoked:
        return "revoked"
    if row.valid_from is not None and at < as_utc(row.valid_from):
        return "not_yet_valid"
    if row.valid_until is not None and at >= as_utc(row.valid_until):
        return "expired"
    return "valid"


def describe(row: Pass, site: str, page_url: str, at: datetime) -> dict[str, Any]:
    """The JSON the CLI prints for a pass (never the code itself)."""
    return {"id": row.id, "page_url": page_url, "site": site, "holder": row.holder,
            "kind": row.kind,
            "valid_from": format_time(row.valid_from) if row.valid_from else None,
            "valid_until": format_time(row.valid_until) if row.valid_until else None,
            "state": state_at(row, at), "type": "signed" if row.signed else "plain",
            "rotating": bool(row.rotating), "kid": row.kid}
