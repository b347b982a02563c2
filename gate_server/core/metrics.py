"""Prometheus metrics of one server process, on its own registry, served at GET /metrics.

Counters and the latency histogram count what *this process* handled: with several server
processes behind a proxy, scrape each one and sum (`sum by (route) (rate(...))`). The gate
gauges are read from the database at scrape time, so every process reports the same value.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from ..db.models import Gate
from .config import SettingsError
from .timeutil import Clock

log = logging.getLogger(__name__)

# Seconds; the sync and events endpoints should sit well inside 0.1 s (see bench/server_scale).
LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
UNMATCHED = "unmatched"  # any path no route owns: hostile paths must not become label values
MIN_TOKEN = 16
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def load_token(path: Path) -> str:
    """The scrape token from its file (first line); a short or unreadable one is refused."""
    try:
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"--metrics-token-file: cannot read {path}: {exc}") from None
    if len(token) < MIN_TOKEN or not token.isascii() or not token.isprintable() or " " in token:
        raise SettingsError(f"--metrics-token-file: {path} must hold one token of at least "
                            f"{MIN_TOKEN} printable ASCII characters without spaces")
    return token


def token_ok(header: str, token: str) -> bool:
    scheme, _, sent = header.partition(" ")
    # compare_digest: the time taken must not reveal how much of a guess matched.
    return scheme.lower() == "bearer" and hmac.compare_digest(sent.strip().encode(),
                                                              token.encode())


class _GateCollector(Collector):
    """gates and gates online, counted in the database when scraped."""

    def __init__(self, sessions: sessionmaker[Session], clock: Clock, online_s: float) -> None:
        self.sessions, self.clock, self.online_s = sessions, clock, online_s

    def collect(self) -> Iterator[GaugeMetricFamily]:
        since = self.clock() - timedelta(seconds=self.online_s)
        up = GaugeMetricFamily("gate_server_database_up",
                               "1 when the gate counts below could be read from the database")
        try:
            with self.sessions() as session:
                total = session.scalar(select(func.count()).select_from(Gate)) or 0
                online = session.scalar(select(func.count()).select_from(Gate)
                                        .where(Gate.last_seen_at >= since)) or 0
        except SQLAlchemyError as exc:
            log.warning("metrics: gate counts unavailable: %s", type(exc).__name__)
            up.add_metric([], 0.0)
            yield up
            return
        up.add_metric([], 1.0)
        yield up
        yield GaugeMetricFamily("gate_server_gates", "gates enrolled", value=float(total))
        yield GaugeMetricFamily(
            "gate_server_gates_online",
            f"gates that called the API within the last {self.online_s:g} s", value=float(online))


@dataclass(frozen=True)
class ServerMetrics:
    registry: CollectorRegistry
    requests: Counter
    latency: Histogram
    verify: Counter
    rate_limited: Counter
    events_stored: Counter


def build_metrics(sessions: sessionmaker[Session], clock: Clock,
                  online_s: float) -> ServerMetrics:
    reg = CollectorRegistry()  # never the global one: two apps in one process stay apart
    reg.register(_GateCollector(sessions, clock, online_s))
    return ServerMetrics(
        registry=reg,
        requests=Counter("gate_server_requests", "HTTP requests by route template and status",
                         ["route", "method", "status"], registry=reg),
        latency=Histogram("gate_server_request_duration_seconds",
                          "time from request to the end of the response, by route template",
                          ["route"], buckets=LATENCY_BUCKETS, registry=reg),
        verify=Counter("gate_server_verify_decisions", "online decisions by decision and reason",
                       ["decision", "reason"], registry=reg),
        rate_limited=Counter("gate_server_rate_limited",
                             "verify requests refused with 429 by the per-gate rate limit",
                             registry=reg),
        events_stored=Counter("gate_server_events_stored",
                              "events newly stored (a re-sent duplicate is not counted)",
                              registry=reg),
    )


Scope = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[dict[str, Any]], Any]


class MetricsMiddleware:
    """Pure ASGI: counts and times every HTTP request by the route template that served it."""

    def __init__(self, app: Any, metrics: ServerMetrics,
                 timer: Callable[[], float] = time.perf_counter) -> None:
        self.app, self.metrics, self.timer = app, metrics, timer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # an exception before the response started is a 500 to the client
        start = self.timer()

        async def send_status(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", None) or UNMATCHED
            method = scope.get("method", "")
            method = method if method in METHODS else "other"  # bounded, like the routes
            self.metrics.requests.labels(route, method, str(status)).inc()
            self.metrics.latency.labels(route).observe(self.timer() - start)
