"""The status file: atomic replacement, throttling, what it holds (never a code), and
`gate status` for people and scripts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from gate.journal import utc_now
from gate.status import STALE_AFTER_S, FrameRate, StatusWriter, assess, format_status, read_status, write_atomic
from tests.support.daemon import REPO, run_gate
from tests.support.gatehelpers import ALICE, UNKNOWN, setup_config, wait_until


def gate_status(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gate", "status", "--config", str(config),
                           *args], capture_output=True, text=True, timeout=60, cwd=REPO)


# -- the file -----------------------------------------------------------------------------------

def test_status_write_is_atomic_for_a_concurrent_reader(tmp_path: Path) -> None:
    path = tmp_path / "status.json"
    big = {"pad": "x" * 200_000}  # large enough that a plain rewrite would be seen half-done
    write_atomic(path, {**big, "n": 0})
    stop = threading.Event()
    errors: list[Exception] = []
    reads = [0]

    def reader() -> None:
        while not stop.is_set():
            try:
                data = read_status(path)
                assert len(data["pad"]) == 200_000
                reads[0] += 1
            except Exception as exc:  # any torn read fails the test
                errors.append(exc)
                return

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for n in range(1, 150):
            write_atomic(path, {**big, "n": n})
        wait_until(lambda: reads[0] >= 20 or errors, what="the reader to read")
    finally:
        stop.set()
        thread.join()
    assert errors == []
    assert read_status(path)["n"] == 149
    assert [p.name for p in tmp_path.iterdir()] == ["status.json"]  # no temp files left
    assert os.stat(path).st_mode & 0o777 == 0o644


def test_status_writer_throttles_and_writes_changes_and_heartbeats(tmp_path: Path) -> None:
    w = StatusWriter(tmp_path / "s.json", min_interval_s=1.0, heartbeat_s=5.0)
    assert w.maybe_write({"a": 1}, now=100.0)
    assert not w.maybe_write({"a": 2}, now=100.5)  # too soon, even though it changed
    assert w.maybe_write({"a": 2}, now=101.0)
    assert not w.maybe_write({"a": 2}, now=103.0)  # unchanged: wait for the heartbeat
    assert w.maybe_write({"a": 2}, now=106.0)
    assert read_status(tmp_path / "s.json")["a"] == 2
    assert w.due(now=200.0) and not w.due(now=200.5) and w.due(now=201.0)


def test_status_writer_reports_a_failing_disk_without_raising(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    w = StatusWriter(blocker / "status.json")
    assert not w.write({"a": 1})
    assert w.failing


def test_status_frame_rate_over_the_window() -> None:
    rate = FrameRate(window_s=2.0)
    for i in range(31):  # 15 fps for 2 s
        rate.tick(int(i * 1e9 / 15))
    assert rate.fps(now_ns=int(2e9)) == 15.0
    assert rate.fps(now_ns=int(10e9)) == 0.0  # no frames lately


def test_status_assess_marks_stale_and_dead_daemons() -> None:
    now = time.time()
    fresh = {"state": "running", "pid": os.getpid(), "updated_at": utc_now(now - 1)}
    assert assess(fresh, now)["running"] and not assess(fresh, now)["stale"]
    old = {**fresh, "updated_at": utc_now(now - STALE_AFTER_S - 1)}
    assert assess(old, now)["stale"] and not assess(old, now)["running"]
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    gone = {**fresh, "pid": int(dead)}
    assert assess(gone, now)["stale"] and not assess(gone, now)["running"]
    stopped = {**fresh, "state": "stopped", "updated_at": utc_now(now - 3600)}
    assert not assess(stopped, now)["running"] and not assess(stopped, now)["stale"]
    cached = {**fresh, "cache_synced_at": utc_now(now - 90)}
    assert 89 <= assess(cached, now)["cache_age_s"] <= 91


def test_status_format_for_a_person_names_each_fact() -> None:
    text = format_status(assess({
        "gate": "lobby", "state": "fault", "faults": ["decision"], "pid": os.getpid(),
        "updated_at": utc_now(),
        "last_decision": {"verdict": "deny", "reason": "expired", "label": "Bob",
                          "source": "list", "at": "2026-01-01T00:00:00.000Z"},
        "door": {"relay": "locked", "contact": "open", "alarms": ["forced_open"]},
        "server_reachable": False, "cache_synced_at": utc_now(time.time() - 7200),
        "fps": 14.9}))
    for needle in ("gate lobby: fault (faults: decision)", "DENY (expired) 'Bob'",
                   "relay locked, open, ALARM: forced_open", "UNREACHABLE", "2 h",
                   "14.9 frames/s"):
        assert needle in text, (needle, text)


# -- the daemon writes it -----------------------------------------------------------------------

def test_status_daemon_writes_decision_and_door_and_stopped_never_a_code(tmp_path: Path) -> None:
    config = setup_config(tmp_path, [None] * 2 + [ALICE] * 2 + [None] * 3 + [UNKNOWN] * 2
                          + [None] * 4, camera={"loop": False}, door={"open_s": 0.2})
    result = run_gate(config)
    assert result.returncode == 0, result.stdout + result.stderr
    raw = (tmp_path / "state" / "status.json").read_text()
    status = json.loads(raw)
    assert status["state"] == "stopped" and status["gate"] == "test-gate"
    last = status["last_decision"]
    assert (last["verdict"], last["reason"], last["source"]) == ("deny", "unknown", "none")
    assert status["door"] == {"relay": "locked", "contact": None, "alarms": [],
                              "fail_mode": "secure"}
    assert status["server_reachable"] is None and status["cache_synced_at"] is None
    assert status["fps"] > 0
    for payload in (ALICE, UNKNOWN):
        assert payload not in raw
    proc = gate_status(config, "--json")
    assert proc.returncode == 3, proc.stderr  # stopped
    out = json.loads(proc.stdout)
    assert out["state"] == "stopped" and out["running"] is False


@pytest.mark.slow
def test_status_of_a_running_daemon_for_scripts_and_people(tmp_path: Path, gate_process) -> None:
    config = setup_config(tmp_path, [None] * 2 + [ALICE] * 2 + [None] * 12,
                          door={"open_s": 0.2})
    gate = gate_process(config)
    gate.wait_for(r"decision: grant")
    path = tmp_path / "state" / "status.json"
    wait_until(lambda: read_status(path).get("fps", 0) > 0, what="status with a frame rate")
    proc = gate_status(config, "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    status = json.loads(proc.stdout)
    assert status["running"] is True and status["stale"] is False
    assert status["state"] == "running" and status["pid"] == gate.proc.pid
    assert status["last_decision"]["label"] == "Alice"
    assert 5 <= status["fps"] <= 40
    human = gate_status(config)
    assert human.returncode == 0
    assert "gate test-gate: running" in human.stdout and "GRANT (ok) 'Alice'" in human.stdout
    gate.signal(__import__("signal").SIGTERM)
    assert gate.wait() == 0, gate.output
    assert read_status(path)["state"] == "stopped"


def test_status_without_a_status_file_exits_1(tmp_path: Path) -> None:
    config = setup_config(tmp_path)
    proc = gate_status(config)
    assert proc.returncode == 1
    assert "no status file" in proc.stderr


@pytest.mark.parametrize("content", ["{not json", "[1, 2]"])
def test_status_unreadable_file_exits_1_naming_it(tmp_path: Path, content: str) -> None:
    config = setup_config(tmp_path)
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "status.json").write_text(content)
    proc = gate_status(config)
    assert proc.returncode == 1 and "status.json" in proc.stderr
