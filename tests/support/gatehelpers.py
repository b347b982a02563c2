"""Helpers for in-process tests of the door I/O: a Gate on mock pins and the files camera,
waiting on conditions (journal events, pin histories) with a deadline instead of sleeping."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tests.support.daemon import gate_config, journal_events, write_allowlist
from tests.support.qrimages import write_frames

ALICE, STAFFER, UNKNOWN = "GATE-TEST-ALICE-1", "GATE-TEST-CHECK-ME", "GATE-TEST-NOBODY-7"
ROWS = [f"{ALICE},Alice,2020-01-01,2099-12-31"]


def wait_until(condition: Callable[[], Any], timeout: float = 10.0, what: str = "") -> Any:
    """Poll `condition` until it is truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        time.sleep(0.01)


def states(pin: Any) -> list[bool]:
    return [bool(s.state) for s in pin.states]


def wait_states(pin: Any, n: int, timeout: float = 10.0) -> list[Any]:
    """The pin's history once it has at least `n` entries."""
    wait_until(lambda: len(pin.states) >= n, timeout, f"{n} states on {pin}")
    return list(pin.states)


def events_where(state_dir: Path, **match: Any) -> list[dict[str, Any]]:
    if not (state_dir / "journal.db").exists():
        return []
    try:
        events = journal_events(state_dir)
    except sqlite3.OperationalError:  # the daemon is still creating its tables
        return []
    return [e for e in events if all(e.get(k) == v for k, v in match.items())]


def wait_event(state_dir: Path, timeout: float = 10.0, **match: Any) -> dict[str, Any]:
    found = wait_until(lambda: events_where(state_dir, **match), timeout, f"event {match}")
    return found[-1]


def setup_config(tmp_path: Path, sequence: list[Any] | None = None,
                 **overrides: dict[str, Any]) -> Path:
    """A config for the files camera (looping) over `sequence` (default: an empty scene)."""
    frames = tmp_path / "frames"
    write_frames(frames, sequence or [None] * 4)
    allowlist = write_allowlist(tmp_path / "allow.csv", ROWS)
    base: dict[str, dict[str, Any]] = {"camera": {"loop": True, "fps": 20},
                                       "decoder": {"leave_s": 0.2}}
    for name, keys in overrides.items():
        base.setdefault(name, {}).update(keys)
    return gate_config(tmp_path, frames, allowlist, **base)


@contextlib.contextmanager
def running_gate(config: Path, factory: Any,
                 prepare: Callable[[Any], None] | None = None) -> Iterator[Any]:
    """A Gate running its frame loop in a thread on `factory`; stopped and closed after.
    `prepare(gate)` runs before the first frame."""
    from gate.config import load_config
    from gate.daemon import Gate

    stop = threading.Event()
    gate = Gate(load_config(config), stop, pin_factory=factory)
    result: dict[str, Any] = {}
    if prepare is not None:
        try:
            prepare(gate)
        except BaseException:
            gate.close()
            raise

    def run() -> None:
        try:
            result["rc"] = gate.run()
        except BaseException as exc:  # reported by the test below
            result["error"] = exc

    thread = threading.Thread(target=run, name="test-gate", daemon=True)
    thread.start()
    try:
        yield gate
    finally:
        stop.set()
        thread.join(timeout=10)
        gate.close()
    assert not thread.is_alive(), "the frame loop did not stop"
    assert "error" not in result, result.get("error")
