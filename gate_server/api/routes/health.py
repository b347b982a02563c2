"""GET /healthz: the database answers (for load balancers and systemd checks; no auth)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import text

from ..deps import SessionDep

router = APIRouter()


@router.get("/healthz")
def healthz(session: SessionDep) -> dict[str, Any]:
    session.execute(text("SELECT 1"))
    return {"ok": True}
