"""SIGHUP with a malformed config, as a subprocess: each kind of bad file is refused whole
(`reload_failed` in the journal), and the daemon keeps deciding with the config it runs."""

from __future__ import annotations

import shutil
import signal
from pathlib import Path

import pytest

from tests.support.daemon import journal_events
from tests.support.gatehelpers import ALICE, setup_config, wait_until

MALFORMED: list[tuple[str, bytes]] = [
    ("huge number", b"[policy]\nmax_cache_age_s = 1" + b"0" * 400 + b"\n"),
    ("infinity", b"[door]\nopen_s = inf\n"),
    ("nan", b"[decoder]\nrepeat_guard_s = nan\n"),
    ("deep nesting", b"[gate]\nid = " + b"[" * 3000 + b"]" * 3000 + b"\n"),
    ("wrong type", b"[door]\nopen_s = \"long\"\n"),
    ("huge string", b"[gate]\nid = \"" + b"x" * 10000 + b"\"\n"),
    ("not UTF-8", b"[gate]\nid = \"Gar\xe7on\"\n"),
    ("NUL in a path", b"[list]\npath = \"/tmp/a\\u0000b\"\n"),
]


def reload_failures(state: Path) -> list[dict[str, object]]:
    return [e for e in journal_events(state) if e.get("event") == "reload_failed"]


def grants_after(state: Path, seq: int) -> int:
    return sum(1 for e in journal_events(state)[seq:] if e.get("verdict") == "grant")


@pytest.mark.slow
def test_reload_malformed_config_is_refused_and_the_gate_keeps_deciding(
        tmp_path: Path, gate_process) -> None:
    config = setup_config(tmp_path, [None] * 2 + [ALICE] * 2 + [None] * 6,
                          list={"watch_interval_s": 3600})
    good = config.read_bytes()
    state = tmp_path / "state"
    gate = gate_process(config)
    gate.wait_for(r"decision: grant")
    kinds = [*MALFORMED, ("a directory", b"")]
    for i, (kind, content) in enumerate(kinds, 1):
        config.unlink()
        if kind == "a directory":
            config.mkdir()
        else:
            config.write_bytes(good + b"\n" + content)
        gate.signal(signal.SIGHUP)
        wait_until(lambda i=i: len(reload_failures(state)) >= i, 20, f"reload_failed for {kind}")
        seen = len(journal_events(state))
        wait_until(lambda seen=seen: grants_after(state, seen) >= 1, 20, f"a grant after {kind}")
        if config.is_dir():
            shutil.rmtree(config)
    gate.signal(signal.SIGTERM)
    assert gate.wait() == 0, gate.output
    failures = reload_failures(state)
    assert len(failures) == len(kinds)
    assert all(str(config) in str(f["error"]) for f in failures), failures
    assert "Traceback" not in gate.output
    assert not any(e.get("event") == "reloaded" for e in journal_events(state))
