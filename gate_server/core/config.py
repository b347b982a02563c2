"""Server settings: one object, from arguments and the environment, never built at import."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from .timeutil import Clock, utcnow

DEFAULT_DIR = Path("/var/lib/gate-server")
DB_ENV = "GATE_SERVER_DB"
SECRET_ENV = "GATE_SERVER_SECRET_FILE"


class SettingsError(ValueError):
    """A setting the server cannot run with; the message names it."""


@dataclass(frozen=True)
class RateLimit:
    """Per-gate token bucket for /v1/verify: `burst` at once, `per_s` sustained."""

    burst: float = 30.0
    per_s: float = 5.0
    alarm_interval_s: float = 60.0  # at most one stored alarm per gate per interval


@dataclass(frozen=True)
class OccupancySettings:
    """Occupancy timings and lease sizes (docs/server-api.md, "Occupancy and leases")."""

    hold_s: float = 120.0          # an unreported in-grant counts as entered after this
    lease_ttl_s: float = 900.0     # what the gate honours on its monotonic clock
    lease_margin_s: float = 300.0  # clock drift and delayed reports, before reclaiming
    min_lease: int = 2
    max_lease: int = 50
    traffic_window_s: float = 3600.0


@dataclass(frozen=True)
class Settings:
    db_url: str
    secret_file: Path
    max_body: int = 1_048_576      # bytes; a verify is ~100 B, an event batch of 200 ~100 kB
    rate: RateLimit = field(default_factory=RateLimit)
    tombstone_days: float = 30.0   # revoked passes kept this long for delta syncs
    clock: Clock = utcnow
    monotonic: Callable[[], float] = time.monotonic  # for the rate limiter
    metrics_token_file: Path | None = None  # GET /metrics is off (404) without one
    online_s: float = 180.0        # a gate seen within this is "online" (3 missed syncs)
    seen_write_s: float = 60.0     # last-seen is written at most this often per gate
    occupancy: OccupancySettings = field(default_factory=OccupancySettings)


def default_db_url() -> str:
    return f"sqlite:///{DEFAULT_DIR / 'gate-server.db'}"


def normalize_db_url(url: str) -> str:
    """Check the URL and pin the PostgreSQL driver to psycopg 3 (bare postgresql:// differs
    between SQLAlchemy versions)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise SettingsError(f"--db: {url!r} is not a database URL "
                            "(sqlite:///PATH or postgresql+psycopg://...)") from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername not in ("sqlite", "postgresql+psycopg"):
        raise SettingsError(f"--db: unsupported database {parsed.drivername!r} "
                            "(sqlite or postgresql+psycopg)")
    if parsed.drivername == "sqlite" and not parsed.database:
        raise SettingsError("--db: an SQLite URL needs a file path (sqlite:///PATH)")
    return parsed.render_as_string(hide_password=False)


def default_secret_file(db_url: str) -> Path:
    """Beside an SQLite file; under the state directory for a database on another host."""
    parsed = make_url(db_url)
    if parsed.drivername == "sqlite" and parsed.database and parsed.database != ":memory:":
        return Path(parsed.database).with_name(Path(parsed.database).name + ".secret")
    return DEFAULT_DIR / "pass-secret"


def load_settings(db: str | None = None, secret_file: str | None = None,
                  clock: Clock = utcnow) -> Settings:
    url = normalize_db_url(db or os.environ.get(DB_ENV) or default_db_url())
    secret = secret_file or os.environ.get(SECRET_ENV)
    return Settings(db_url=url, secret_file=Path(secret) if secret else default_secret_file(url),
                    clock=clock)
