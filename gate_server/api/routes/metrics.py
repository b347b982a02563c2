"""GET /metrics: this process's Prometheus metrics, for a bearer token from a file."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ...core.metrics import token_ok

router = APIRouter()


@router.get("/metrics")
def get_metrics(request: Request) -> Response:
    # A token, not "loopback only": behind a reverse proxy every client is on loopback.
    token: str | None = request.app.state.metrics_token
    if token is None:
        raise HTTPException(404, "metrics are off (gate-server serve --metrics-token-file)")
    if not token_ok(request.headers.get("Authorization", ""), token):
        raise HTTPException(401, "missing or wrong bearer token",
                            headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
    body = generate_latest(request.app.state.metrics.registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})
