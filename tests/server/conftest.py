"""Server test fixtures: every test runs on SQLite and on PostgreSQL, against a fresh
migrated database, with an injected clock."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gate_server.db.session import migrate
from tests.support.server import Running, Server, counter, make_server, serving

from .pg import PG_BIN, PgCluster


def pytest_configure(config: pytest.Config) -> None:
    # Starlette 1.10 prefers httpx2 for TestClient; httpx works and is what we install.
    config.addinivalue_line("filterwarnings",
                            "ignore:Using `httpx` with `starlette.testclient`")


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster | None]:
    """Started only when a PostgreSQL test runs; None when PostgreSQL is not installed."""
    if not (PG_BIN / "initdb").exists():
        if os.environ.get("GATE_REQUIRE_PG") == "1":
            pytest.fail(f"GATE_REQUIRE_PG=1 but {PG_BIN}/initdb is missing "
                        "(apt-get install postgresql)")
        yield None
        return
    cluster = PgCluster()
    try:
        cluster.start()
        cluster.create_db("gs_template")
        migrate(cluster.url("gs_template"))
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("gs-template") / "template.db"
    migrate(f"sqlite:///{path}")
    return path


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated database (copied from a template: migrations run once per session).
    The PostgreSQL variant of every server test runs with the slow tests (CI runs both)."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        shutil.copy(template, tmp_path / "gs.db")
        yield f"sqlite:///{tmp_path / 'gs.db'}"
        return
    cluster: PgCluster | None = request.getfixturevalue("pg_cluster")
    if cluster is None:
        pytest.skip(f"PostgreSQL not installed ({PG_BIN}); CI sets GATE_REQUIRE_PG=1")
    name = f"t{os.getpid()}_{next(counter)}"
    yield cluster.create_db(name, template="gs_template")
    cluster.drop_db(name)


@pytest.fixture
def server(db_url: str, tmp_path: Path) -> Iterator[Server]:
    """A server with site "hq" and gate "gate-1" enrolled."""
    srv = make_server(db_url, tmp_path)
    srv.site("hq")
    srv.gate("gate-1", "hq")
    yield srv
    srv.app.state.engine.dispose()


@pytest.fixture
def client(server: Server) -> Iterator[Any]:
    from fastapi.testclient import TestClient
    with TestClient(server.app) as c:
        yield c


@pytest.fixture
def live(server: Server) -> Iterator[Running]:
    """The same app behind a real uvicorn on 127.0.0.1 (a free port)."""
    with serving(server) as running:
        yield running
