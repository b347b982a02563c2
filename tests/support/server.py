"""The central server under test: an app on a fresh database with an injected clock, and
enrolment helpers that use its services directly (the fixtures are in tests/server/conftest)."""

from __future__ import annotations

import itertools
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
