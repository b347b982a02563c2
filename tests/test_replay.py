"""`gate replay`: decisions on recorded frames with a config, the relay never touched, and the
frame recorder that makes such recordings on a real gate."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.support.daemon import REPO, gate_config, write_allowlist
from tests.support.qrimages import qr_frame, write_png

ALICE, UNKNOWN = "GATE-TEST-ALICE-1", "GATE-TEST-NOBODY-7"


def gate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gate", *args], capture_output=True, text=True,
                          timeout=120, cwd=REPO)


def recorded(tmp_path: Path) -> Path:
    frames = tmp_path / "rec"
    frames.mkdir()
    for i, entry in enumerate([None, ALICE, ALICE, None, None, None, UNKNOWN]):
        write_png(frames / f"frame-{i:04d}.png", qr_frame([] if entry is None else entry))
    return frames


def test_replay_prints_decisions_read_rate_and_timings_without_touching_the_relay(
        tmp_path: Path) -> None:
    frames = recorded(tmp_path)
    allow = write_allowlist(tmp_path / "allow.csv", [f"{ALICE},Alice,2020-01-01,2099-12-31"])
    # A relay pin no mock factory would let two claim: replay must never claim it at all.
    config = gate_config(tmp_path, tmp_path / "nowhere", allow, gpio={"pin_factory": "lgpio"},
                         decoder={"repeat_guard_s": 30.0, "leave_s": 0.1})
    proc = gate("replay", "--config", str(config), str(frames))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "frame-0001.png" in out and "decision: grant (ok) label='Alice' source=list" in out
    assert out.count("decision: grant") == 1, "the repeat guard holds on replayed frames too"
    assert "decision: deny (unknown)" in out
    assert re.search(r"read rate: 3 of 7 frames held a code read \(42\.9%\); decode "
                     r"[\d.]+ ms median, [\d.]+ ms p95", out), out
    assert ALICE not in out + proc.stderr and UNKNOWN not in out + proc.stderr
    assert not (tmp_path / "state" / "journal.db").exists(), "the gate's journal is untouched"


def test_replay_writes_an_optional_journal_of_its_own(tmp_path: Path) -> None:
    frames = recorded(tmp_path)
    allow = write_allowlist(tmp_path / "allow.csv", [])
    config = gate_config(tmp_path, frames, allow)
    journal = tmp_path / "replay.db"
    proc = gate("replay", "--config", str(config), "--journal", str(journal),
                str(frames / "frame-000[12].png"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with sqlite3.connect(journal) as db:
        rows = db.execute("SELECT body FROM events").fetchall()
    events = [json.loads(r[0]) for r in rows]
    assert [(e["kind"], e["verdict"], e["reason"], e["replay"]) for e in events] == [
        ("decision", "deny", "unknown", "frame-0001.png")]
    assert ALICE not in " ".join(r[0] for r in rows)


def test_replay_of_a_missing_frame_pattern_exits_2(tmp_path: Path) -> None:
    allow = write_allowlist(tmp_path / "allow.csv", [])
    config = gate_config(tmp_path, tmp_path, allow)
    proc = gate("replay", "--config", str(config), str(tmp_path / "none-*.png"))
    assert proc.returncode == 2 and "none-*.png" in proc.stderr
