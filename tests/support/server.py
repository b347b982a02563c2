"""The central server under test: an app on a fresh database with an injected clock, and
enrolment helpers that use its services directly (the fixtures are in tests/server/conftest)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from gate_server.core import security
from gate_server.core.config import RateLimit, Settings
from gate_server.db.session import transaction

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
counter = itertools.count()  # unique database names within a run


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


@dataclass
class Running:
    url: str
    server: Server


# -- gate-side tests: gate-server on SQLite behind a real uvicorn -------------------------------

def sqlite_server(template: Path, tmp_path: Path, rate: RateLimit | None = None) -> Server:
    """A server on a copy of a migrated SQLite file, with site "hq" and gate "gate-1"."""
    import shutil
    db = tmp_path / "gate-server.db"
    shutil.copy(template, db)
    server = make_server(f"sqlite:///{db}", tmp_path, rate)
    server.site("hq")
    server.gate("gate-1", "hq")
    return server


def enrol(server: Server, code: bytes | str | None = None, holder: str = "Ann", *,
          code_sha256: str | None = None, status: str | None = None,
          valid_until: datetime | None = None, site: str = "hq") -> str:
    """A plain pass whose code is the given one (gate-server derives codes from its secret;
    gate tests need chosen ones), written through gate-server's own service and database.
    Returns the pass id."""
    import hashlib

    from gate_server.db.models import Pass
    from gate_server.services import passes
    if code_sha256 is None:
        raw = code.encode() if isinstance(code, str) else code
        assert raw is not None, "give code or code_sha256"
        code_sha256 = hashlib.sha256(raw).hexdigest()
    with server.session() as s:
        row = passes.issue(s, server.secret, passes.IssueSpec(site, holder,
                                                              valid_until=valid_until),
                           server.clock())
        row = s.get(Pass, row.id)
        row.code_sha256, row.status = code_sha256, status
        pass_id: str = row.id
    return pass_id


def stored_events(server: Server, gate_id: str = "gate-1") -> list[dict[str, Any]]:
    """The events gate-server holds for a gate, from its database, oldest id first."""
    import json

    from sqlalchemy import select

    from gate_server.db.models import Event
    with server.session() as s:
        rows = s.scalars(select(Event).where(Event.gate_id == gate_id)
                         .order_by(Event.n)).all()
        return [dict(json.loads(r.body)) for r in rows]


@contextmanager
def serving(server: Server, port: int = 0, ssl_certfile: Path | None = None,
            ssl_keyfile: Path | None = None) -> Iterator[Running]:
    """The app behind a real uvicorn on 127.0.0.1 (HTTPS with a certificate and key)."""
    import threading
    import time

    import uvicorn
    uv = uvicorn.Server(uvicorn.Config(
        server.app, host="127.0.0.1", port=port, log_level="warning", access_log=False,
        ssl_certfile=str(ssl_certfile) if ssl_certfile else None,
        ssl_keyfile=str(ssl_keyfile) if ssl_keyfile else None))
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not uv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    bound = uv.servers[0].sockets[0].getsockname()[1]
    scheme = "https" if ssl_certfile else "http"
    try:
        yield Running(f"{scheme}://127.0.0.1:{bound}", server)
    finally:
        uv.should_exit = True
        thread.join(5)
        server.app.state.engine.dispose()
