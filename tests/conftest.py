"""Shared fixtures: gpiozero mock pins, and the daemon run as a real subprocess (its helpers are in
tests/support/daemon.py)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gpiozero import Device, Factory
from gpiozero.pins.mock import MockFactory

from tests.support.daemon import GateProcess

# Subprocesses (`gate run`, install scripts) inherit this: a device there built without the
# config's pin factory fails with this name in its error instead of probing real GPIO.
os.environ["GPIOZERO_PIN_FACTORY"] = "tests-pass-pin_factory-explicitly"


class RefusingFactory(Factory):  # type: ignore[misc]  # gpiozero has no type information
    """The global pin factory during tests: building a device on it is a bug in the code under
    test (a device or worker that forgot to pass `pin_factory=`), so it fails loudly."""

    def pin(self, name: Any) -> Any:
        raise AssertionError(f"a device on pin {name!r} was built without pin_factory=: "
                             "pass the factory explicitly (tests use MockFactory)")

    def reserve_pins(self, requester: Any, *names: Any) -> None:
        self.pin(names[0] if names else None)

    def ticks(self) -> float:
        return time.monotonic()

    def ticks_diff(self, later: float, earlier: float) -> float:
        return later - earlier


@pytest.fixture(autouse=True)
def refuse_default_pins() -> Iterator[None]:
    """Every test runs with the refusing factory as gpiozero's global one."""
    previous = Device.pin_factory
    Device.pin_factory = RefusingFactory()
    yield
    Device.pin_factory = previous


@pytest.fixture
def pins() -> Iterator[MockFactory]:
    """gpiozero's MockFactory, to pass as pin_factory= (never installed as the global one)."""
    factory = MockFactory()
    yield factory
    factory.reset()


@pytest.fixture
def gate_process() -> Iterator[Any]:
    started: list[GateProcess] = []

    def start(config: Path, env: dict[str, str] | None = None) -> GateProcess:
        gp = GateProcess(config, env)
        started.append(gp)
        return gp

    yield start
    for gp in started:
        gp.kill()


@pytest.fixture(scope="session")
def gs_sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """gate-server's schema migrated once per session; each test copies the file."""
    from gate_server.db.session import migrate
    path = tmp_path_factory.mktemp("gs-gate-template") / "template.db"
    migrate(f"sqlite:///{path}")
    return path


@pytest.fixture
def central(gs_sqlite_template: Path, tmp_path: Path) -> Iterator[Any]:
    """gate-server (site "hq", gate "gate-1", a frozen clock) behind a real uvicorn on
    127.0.0.1, on SQLite: the central server for the gate-side tests. Yields a
    tests.support.server.Running; its .server has the enrolment helpers' state."""
    from tests.support.server import serving, sqlite_server
    with serving(sqlite_server(gs_sqlite_template, tmp_path)) as running:
        yield running
