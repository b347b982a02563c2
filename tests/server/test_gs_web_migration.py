"""Migration 0002 (admin roles, web sessions) upgrades a 0001 database that already has an
admin, on SQLite and PostgreSQL: the admin keeps full rights, and it downgrades cleanly."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import create_engine, inspect, text

from gate_server.db.session import _alembic_config
from tests.support.server import counter

from .pg import PG_BIN, PgCluster


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'old.db'}"
    cluster: PgCluster | None = request.getfixturevalue("pg_cluster")
    if cluster is None:
        pytest.skip(f"PostgreSQL not installed ({PG_BIN}); CI sets GATE_REQUIRE_PG=1")
    return cluster.create_db(f"m{os.getpid()}_{next(counter)}")


def test_gs_web_migration_0002_keeps_existing_admins_as_admin(empty_db: str) -> None:
    cfg = _alembic_config(empty_db)
    command.upgrade(cfg, "0001")
    engine = create_engine(empty_db)
    try:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO admins (username, password_hash, created_at) "
                              "VALUES ('old', 'h', :t)"),
                         {"t": datetime(2026, 1, 1, tzinfo=timezone.utc)})
        command.upgrade(cfg, "head")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT role FROM admins")).scalar_one() == "admin"
            assert conn.execute(text("SELECT count(*) FROM web_sessions")).scalar_one() == 0
        command.downgrade(cfg, "0001")
        engine.dispose()
        assert "web_sessions" not in inspect(engine).get_table_names()
        assert "role" not in {c["name"] for c in inspect(engine).get_columns("admins")}
        command.upgrade(cfg, "head")
    finally:
        engine.dispose()
