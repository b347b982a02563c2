"""Engine and sessions per app (never global), and schema migration with Alembic."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

# Per process: the gate routes use at most api/gateauth.DB_THREADS (8) at once, the other
# routes the rest. Kept open: an overflow connection is closed when returned, so bursts
# above pool_size open a PostgreSQL backend per request (SQLAlchemy's default pool of 5
# cost 0.6 ms of PostgreSQL CPU per request at 8 concurrent requests). At most 20 per
# process: 5 processes fit PostgreSQL's default max_connections of 100 (4 processes with
# 40 each got "too many clients").
POOL_SIZE = 12
MAX_OVERFLOW = 8
MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


class SchemaError(RuntimeError):
    """The database schema is missing or older than this server: run `gate-server init`."""


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 15})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(conn: Any, _record: Any) -> None:
            cur = conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")   # readers never wait for the writer
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()
        return engine
    # No pre-ping (a round trip per checkout): after a database restart the first statement
    # on a dead connection fails, SQLAlchemy then drops the whole pool, and the gate routes
    # retry once on a fresh connection (api/gateauth.autocommit).
    return create_engine(url, pool_pre_ping=False, pool_size=POOL_SIZE,
                         max_overflow=MAX_OVERFLOW)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    with factory() as session, session.begin():
        yield session


def _alembic_config(url: str) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))  # configparser escaping
    return cfg


def migrate(url: str) -> None:
    """Create or upgrade the schema to the newest revision; running it twice is a no-op."""
    command.upgrade(_alembic_config(url), "head")


def check_schema(engine: Engine) -> None:
    head = ScriptDirectory.from_config(_alembic_config(str(engine.url))).get_current_head()
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    if current != head:
        raise SchemaError(f"database schema is at {current or 'nothing'}, this server needs "
                          f"{head}: run `gate-server init`")
