"""The online decision for one scanned code at one gate, by the server's clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from gate.passes import PREFIX
from gate.verify.passes import PassDecision, PassPolicy, PassVerifier

from ..core import security
from ..db.models import Gate, Pass, Site
from . import signing
from .passes import state_at
from .revocations import DbRevocations

PREFIX_BYTES = PREFIX.encode("ascii")

# The server's answer for each colour; the gate maps the colour again through its
# [policy.status] and keeps the stricter of the two.
STATUS_VERDICT = {"green": "grant", "yellow": "staff", "red": "deny", "black": "deny"}


@dataclass(frozen=True)
class Verdict:
    decision: str
    reason: str
    label: str | None = None
    open_s: float | None = None
    status: str | None = None
    credential_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"decision": self.decision, "reason": self.reason}
        for key in ("label", "open_s", "status", "credential_id"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out


def decide(session: Session, gate: Gate, code: bytes, now: datetime,
           secret: bytes = b"") -> Verdict:
    if code.startswith(PREFIX_BYTES) and secret:
        return decide_signed(session, gate, code, now, secret)
    row = session.scalar(select(Pass).where(Pass.code_sha256 == security.sha256_hex(code)))
    if row is None:
        return Verdict("deny", "unknown")
    if row.site_id != gate.site_id:
        # Said plainly but without the label: the holder is not known at this site.
        return Verdict("deny", "wrong_site", credential_id=row.id)
    state = state_at(row, now)
    if state != "valid":
        return Verdict("deny", state, row.holder, None, row.status, row.id)
    decision = STATUS_VERDICT.get(row.status, "deny") if row.status else "grant"
    if decision == "deny":
        return Verdict("deny", f"status_{row.status}", row.holder, None, row.status, row.id)
    reason = f"status_{row.status}" if decision == "staff" else "ok"
    open_s = row.open_s if decision == "grant" else None
    return Verdict(decision, reason, row.holder, open_s, row.status, row.id)


def decide_signed(session: Session, gate: Gate, code: bytes, now: datetime,
                  secret: bytes) -> Verdict:
    """A GP1 pass, checked exactly as a gate checks it offline (same verifier, same reasons),
    with the database as the revocation list: a revocation counts the moment it commits."""
    site = session.get(Site, gate.site_id)
    if site is None:
        return Verdict("deny", "unknown")
    ring = signing.public_keys(session)
    rotation = {site.name: signing.site_rotation_key(secret, site)}
    verifier = PassVerifier(lambda: ring, lambda: rotation, DbRevocations(session),
                            PassPolicy(site.name, ZoneInfo(site.timezone), max_key_age_s=0))
    try:
        text = code.decode("ascii")
    except UnicodeDecodeError:
        return Verdict("deny", "bad_format")
    decision = verifier.decide(text, now.timestamp())
    pass_id = decision.pass_id if isinstance(decision, PassDecision) else None
    row = session.get(Pass, pass_id) if pass_id else None
    if row is None:
        return Verdict(decision.verdict, decision.reason)
    if decision.verdict == "grant" and state_at(row, now) != "valid":
        # the pass's claims hold but the server knows better (e.g. a pass ended early)
        return Verdict("deny", state_at(row, now), row.holder, None, row.status, row.id)
    return Verdict(decision.verdict, decision.reason, row.holder,
                   row.open_s if decision.verdict == "grant" else None, row.status, row.id)
