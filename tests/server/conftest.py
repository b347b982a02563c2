"""Server test fixtures: every test runs on SQLite and on PostgreSQL, against a fresh
migrated database, with an injected clock."""

from __future__ import annotations

import itertools
import os
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from gate_server.core import security
from gate_server.core.config import RateLimit, Settings
from gate_server.db.session import migrate, transaction

from .pg import PG_BIN, PgCluster

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
_counter = itertools.count()


@dataclass
class Clock:
    """Wall clock and monotonic clock moved together by tests."""

    now: datetime = T0
    mono: float = 1000.0

    def __call__(self) -> datetime:
        return self.now

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
        self.mono += seconds


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


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, migrated database (copied from a template: migrations run once per session)."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        shutil.copy(template, tmp_path / "gs.db")
        return f"sqlite:///{tmp_path / 'gs.db'}"
    cluster: PgCluster | None = request.getfixturevalue("pg_cluster")
    if cluster is None:
        pytest.skip(f"PostgreSQL not installed ({PG_BIN}); CI sets GATE_REQUIRE_PG=1")
    return cluster.create_db(f"t{os.getpid()}_{next(_counter)}", template="gs_template")


@dataclass
class Server:
    """An app on a fresh database, plus enrolment helpers that use the services directly."""

    settings: Settings
    clock: Clock
    app: Any = None
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def secret(self) -> bytes:
        secret: bytes = self.app.state.secret
        return secret

    def session(self) -> Any:
        return transaction(self.app.state.sessions)

    def site(self, name: str = "hq") -> None:
        from gate_server.services import admin
        with self.session() as s:
            admin.add_site(s, admin.SiteSpec(name), self.clock())

    def gate(self, gate_id: str = "gate-1", site: str = "hq") -> str:
        from gate_server.services import admin
        with self.session() as s:
            _, token = admin.add_gate(s, gate_id, site, "both", self.clock())
        self.tokens[gate_id] = token
        return token

    def issue(self, holder: str = "Ann", site: str = "hq", **kw: Any) -> tuple[str, str]:
        """(pass id, pass code)."""
        from gate_server.services import passes
        with self.session() as s:
            row = passes.issue(s, self.secret, passes.IssueSpec(site, holder, **kw), self.clock())
            pass_id = row.id
        return pass_id, security.pass_code(self.secret, pass_id)

    def revoke(self, pass_id: str) -> None:
        from gate_server.services import passes
        with self.session() as s:
            passes.revoke(s, pass_id, self.clock())

    def auth(self, gate_id: str = "gate-1") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[gate_id]}"}


def make_server(db_url: str, tmp_path: Path, rate: RateLimit | None = None) -> Server:
    from gate_server.main import create_app
    clock = Clock()
    secret_file = tmp_path / "pass-secret"
    security.create_secret(secret_file)
    settings = Settings(db_url=db_url, secret_file=secret_file, clock=clock,
                        monotonic=clock.monotonic, rate=rate or RateLimit(),
                        max_body=64 * 1024)
    server = Server(settings, clock)
    server.app = create_app(settings)
    return server


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


@dataclass
class Running:
    url: str
    server: Server


@pytest.fixture
def live(server: Server) -> Iterator[Running]:
    """The same app behind a real uvicorn on 127.0.0.1 (a free port)."""
    import uvicorn
    uv = uvicorn.Server(uvicorn.Config(server.app, host="127.0.0.1", port=0,
                                       log_level="warning", access_log=False))
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not uv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    port = uv.servers[0].sockets[0].getsockname()[1]
    yield Running(f"http://127.0.0.1:{port}", server)
    uv.should_exit = True
    thread.join(5)
