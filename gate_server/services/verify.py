"""The online decision for one scanned code at one gate, by the server's clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..core import security
from ..db.models import Gate, Pass
from .passes import state_at

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


def decide(session: Session, gate: Gate, code: bytes, now: datetime) -> Verdict:
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
