"""The app factory: create_app(settings) builds engine, sessions and routes for one app."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from starlette.exceptions import HTTPException as StarletteHTTPException

from .api.routes import credentials, events, health, occupancy, passkeys, revocations, verify
from .api.routes import metrics as metrics_route
from .core import security
from .core.config import Settings
from .core.metrics import MetricsMiddleware, build_metrics, load_token
from .core.ratelimit import TokenBuckets
from .db.session import check_schema, make_engine, make_sessionmaker, transaction
from .services.admin import bind_secret
from .web import common as web_common
from .web import manage as web_manage
from .web import occupancy as web_occupancy
from .web import pages as web_pages
from .web import routes as web

log = logging.getLogger(__name__)
TEMPLATES = Path(__file__).resolve().parent / "templates"
STATIC = Path(__file__).resolve().parent / "static"


async def _http_error(request: Request, exc: Any) -> JSONResponse:
    return JSONResponse({"error": exc.detail}, status_code=exc.status_code,
                        headers=getattr(exc, "headers", None))


async def _validation_error(request: Request, exc: Any) -> JSONResponse:
    # Query parameters only (bodies are validated in the routes); the input is not echoed.
    parts = [".".join(str(p) for p in e["loc"]) + ": " + e["msg"] for e in exc.errors()]
    return JSONResponse({"error": "; ".join(parts)}, status_code=422)


@dataclass(frozen=True)
class Database:
    engine: Engine
    sessions: sessionmaker[Session]
    secret: bytes


def open_database(settings: Settings) -> Database:
    """Engine, sessions and pass secret; refuses a schema or a secret that does not match."""
    engine = make_engine(settings.db_url)
    try:
        check_schema(engine)
        secret = security.load_secret(settings.secret_file)
        sessions = make_sessionmaker(engine)
        with transaction(sessions) as session:
            bind_secret(session, secret)
    except Exception:
        engine.dispose()
        raise
    return Database(engine, sessions, secret)


def create_app(settings: Settings) -> FastAPI:
    """One app with its own engine (disposed by the caller via app.state.engine)."""
    token = load_token(settings.metrics_token_file) if settings.metrics_token_file else None
    db = open_database(settings)
    engine, sessions, secret = db.engine, db.sessions, db.secret
    app = FastAPI(title="gate-server", version="1", max_body_size=settings.max_body,
                  docs_url=None, redoc_url=None)
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessions = sessions
    app.state.secret = secret
    app.state.templates = Jinja2Templates(directory=str(TEMPLATES))
    app.state.buckets = TokenBuckets(settings.rate.burst, settings.rate.per_s, settings.monotonic)
    app.state.metrics = build_metrics(sessions, settings.clock, settings.online_s)
    app.state.metrics_token = token
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    for module in (verify, credentials, events, health, metrics_route, occupancy, passkeys,
                   revocations, web,
                   web_pages, web_manage, web_occupancy):
        app.include_router(module.router)
    web_common.install(app)
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    return app
