"""The daemon end to end: `gate run` as a subprocess on the files camera and mock pins, over
real QR frames; what it did is read back from its journal."""

from __future__ import annotations

import signal
import socket
from datetime import datetime
from pathlib import Path

import pytest

from tests.support.daemon import REPO, gate_config, journal_events, run_gate, write_allowlist
from tests.support.qrimages import write_frames

pytestmark = pytest.mark.slow  # gate run end to end as a subprocess

ALICE, BOB, UNKNOWN = "GATE-TEST-ALICE-1", "GATE-TEST-BOB-EXPIRED", "GATE-TEST-NOBODY-7"
ROWS = [f"{ALICE},Alice,2020-01-01,2099-12-31", f"{BOB},Bob,2020-01-01,2020-12-31"]


def at(event: dict) -> datetime:
    return datetime.fromisoformat(event["at"].replace("Z", "+00:00"))


def door_states(events: list[dict]) -> list[str]:
    return [e["state"] for e in events if e["kind"] == "door"]


def decisions(events: list[dict]) -> list[dict]:
    return [e for e in events if e["kind"] == "decision"]


def setup(tmp_path: Path, sequence: list, **overrides: dict) -> Path:
    frames = tmp_path / "frames"
    write_frames(frames, sequence)
    allowlist = write_allowlist(tmp_path / "allow.csv", ROWS)
    return gate_config(tmp_path, frames, allowlist, **overrides)


def test_daemon_grant_unlocks_then_locks_after_open_s(tmp_path: Path) -> None:
    config = setup(tmp_path, [None] * 2 + [ALICE] * 2 + [None] * 24)  # 1.4 s at 20 fps
    result = run_gate(config)
    assert result.returncode == 0, result.stdout + result.stderr
    events = journal_events(tmp_path / "state")
    [decision] = decisions(events)
    assert decision["verdict"] == "grant" and decision["reason"] == "ok"
    assert decision["label"] == "Alice" and decision["source"] == "list"
    assert decision["latency_ms"] >= 0
    assert door_states(events) == ["unlocked", "locked"]
    unlocked, locked = [e for e in events if e["kind"] == "door"]
    assert (at(locked) - at(unlocked)).total_seconds() >= 0.45  # held for open_s = 0.5
    stopped = events[-1]
    assert stopped["event"] == "stopped" and stopped["reason"] == "end of frames"
    assert events.index(locked) < events.index(stopped)  # locked by the timer, not the exit
    assert "relay: unlocked" in result.stderr and "decision: grant" in result.stderr


def test_daemon_unknown_code_is_denied_and_relay_never_moves(tmp_path: Path) -> None:
    config = setup(tmp_path, [None] + [UNKNOWN] * 3 + [None] * 3)
    result = run_gate(config)
    assert result.returncode == 0, result.stdout + result.stderr
    events = journal_events(tmp_path / "state")
    [decision] = decisions(events)
    assert (decision["verdict"], decision["reason"], decision["source"]) == ("deny", "unknown",
                                                                             "none")
    assert door_states(events) == []
    assert "relay:" not in result.stderr


def test_daemon_expired_code_is_denied_as_expired(tmp_path: Path) -> None:
    config = setup(tmp_path, [BOB] * 3 + [None] * 2)
    result = run_gate(config)
    assert result.returncode == 0, result.stdout + result.stderr
    events = journal_events(tmp_path / "state")
    [decision] = decisions(events)
    assert (decision["verdict"], decision["reason"], decision["label"]) == ("deny", "expired",
                                                                            "Bob")
    assert door_states(events) == []


def test_daemon_code_held_for_many_frames_opens_once(tmp_path: Path) -> None:
    config = setup(tmp_path, [ALICE] * 30 + [None] * 2, door={"open_s": 5.0})
    result = run_gate(config)
    assert result.returncode == 0, result.stdout + result.stderr
    events = journal_events(tmp_path / "state")
    assert len(decisions(events)) == 1
    assert door_states(events) == ["unlocked", "locked"]  # locked by the stop at end of frames


def test_daemon_counts_a_code_again_after_it_left_the_view(tmp_path: Path) -> None:
    # leave_s = 0.2 s: 10 empty frames at 20 fps (0.5 s) is a departure.
    config = setup(tmp_path, [UNKNOWN] * 3 + [None] * 10 + [UNKNOWN] * 3,
                   decoder={"leave_s": 0.2})
    result = run_gate(config)
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(decisions(journal_events(tmp_path / "state"))) == 2


def test_daemon_sigterm_mid_pulse_locks_and_exits_0(tmp_path: Path, gate_process) -> None:
    config = setup(tmp_path, [ALICE] * 2 + [None] * 400, door={"open_s": 60.0, "max_open_s": 60.0})
    gate = gate_process(config)
    gate.wait_for(r"relay: unlocked")
    gate.signal(signal.SIGTERM)
    assert gate.wait(timeout=10) == 0, gate.output
    events = journal_events(tmp_path / "state")
    assert door_states(events) == ["unlocked", "locked"]  # the exit path locked it
    [stopped] = [e for e in events if e.get("event") == "stopped"]
    assert stopped["reason"] == "signal"
    assert "relay: locked" in gate.output


def test_daemon_sigint_stops_cleanly(tmp_path: Path, gate_process) -> None:
    config = setup(tmp_path, [None] * 400)
    gate = gate_process(config)
    gate.wait_for(r"running")
    gate.signal(signal.SIGINT)
    assert gate.wait(timeout=10) == 0, gate.output


def test_daemon_broken_config_exits_2_names_the_key_and_touches_nothing(tmp_path: Path) -> None:
    config = setup(tmp_path, [ALICE], door={"open_s": "four"})
    result = run_gate(config)
    assert result.returncode == 2
    out = result.stdout + result.stderr
    assert "[door] open_s" in out and str(config) in out
    assert not (tmp_path / "state").exists()  # nothing built: no journal, no relay claimed


def test_daemon_missing_allowlist_exits_2_with_the_path(tmp_path: Path) -> None:
    frames = tmp_path / "frames"
    write_frames(frames, [None])
    config = gate_config(tmp_path, frames, tmp_path / "nope.csv")
    result = run_gate(config)
    assert result.returncode == 2
    assert "nope.csv" in result.stdout + result.stderr


def test_daemon_never_writes_or_logs_a_raw_code(tmp_path: Path) -> None:
    config = setup(tmp_path, [ALICE] * 2 + [UNKNOWN] * 2 + [BOB] * 2 + [None] * 12)
    result = run_gate(config)
    assert result.returncode == 0
    assert len(decisions(journal_events(tmp_path / "state"))) == 3
    for payload in (ALICE, UNKNOWN, BOB):
        assert payload not in result.stdout + result.stderr
        for f in (tmp_path / "state").iterdir():
            assert payload.encode() not in f.read_bytes(), f


def test_daemon_sighup_reloads_the_allowlist(tmp_path: Path, gate_process) -> None:
    # The code comes and goes (loop); the list is only re-read on SIGHUP.
    config = setup(tmp_path, [UNKNOWN] * 2 + [None] * 12,
                   camera={"loop": True}, decoder={"leave_s": 0.2},
                   list={"watch_interval_s": 3600})
    gate = gate_process(config)
    gate.wait_for(r"decision: deny \(unknown\)")
    write_allowlist(tmp_path / "allow.csv", ROWS + [f"{UNKNOWN},Newcomer,,"])
    gate.signal(signal.SIGHUP)
    gate.wait_for(r"decision: grant \(ok\) label='Newcomer'")
    gate.signal(signal.SIGTERM)
    assert gate.wait() == 0, gate.output
    assert "reloaded" in gate.output


def test_daemon_reloads_the_allowlist_when_the_file_changes(tmp_path: Path, gate_process) -> None:
    config = setup(tmp_path, [UNKNOWN] * 2 + [None] * 12,
                   camera={"loop": True}, decoder={"leave_s": 0.2},
                   list={"watch_interval_s": 0.2})
    gate = gate_process(config)
    gate.wait_for(r"decision: deny \(unknown\)")
    write_allowlist(tmp_path / "allow.csv", ROWS + [f"{UNKNOWN},Newcomer,,"])
    gate.wait_for(r"decision: grant \(ok\) label='Newcomer'")
    gate.signal(signal.SIGTERM)
    assert gate.wait() == 0, gate.output


def test_daemon_sighup_with_a_broken_config_keeps_running(tmp_path: Path, gate_process) -> None:
    config = setup(tmp_path, [None] * 2 + [ALICE] * 2 + [None] * 12, camera={"loop": True},
                   decoder={"leave_s": 0.2})
    gate = gate_process(config)
    gate.wait_for(r"decision: grant")
    text = config.read_text()
    config.write_text(text + "\n[nonsense]\nx = 1\n")
    gate.signal(signal.SIGHUP)
    gate.wait_for(r"reload refused")
    gate.wait_for(r"decision: grant", timeout=20)  # still deciding with the old config
    gate.signal(signal.SIGTERM)
    assert gate.wait() == 0, gate.output
    assert door_states(journal_events(tmp_path / "state"))[-1] == "locked"


def test_daemon_systemd_notify_ready_watchdog_stopping(tmp_path: Path, gate_process) -> None:
    sock_path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(sock_path))
        sock.settimeout(20)
        config = setup(tmp_path, [None] * 30)
        gate = gate_process(config, env={"NOTIFY_SOCKET": str(sock_path),
                                         "WATCHDOG_USEC": "200000"})
        messages: list[str] = []
        while not any("STOPPING=1" in m for m in messages):
            messages.append(sock.recv(4096).decode())
    assert gate.wait() == 0, gate.output
    assert messages[0].startswith("READY=1")
    assert any(m == "WATCHDOG=1" for m in messages)
    assert messages[-1] == "STOPPING=1"
    assert all("WATCHDOG" not in m for m in messages[:1])


def test_daemon_refuses_an_unknown_decoder_library_cleanly(tmp_path: Path) -> None:
    # check-config and run agree: an invalid choice is a config error, exit 2.
    config = setup(tmp_path, [None], decoder={"backend": "opencv"})
    result = run_gate(config)
    assert result.returncode == 2
    assert "[decoder] backend" in result.stdout + result.stderr


def test_demo_config_runs_to_the_end_of_its_frames(tmp_path: Path) -> None:
    """The README's quickstart config, with its state moved into tmp_path."""
    demo = (REPO / "config" / "demo.toml").read_text()
    demo = demo.replace('state_dir = "/tmp/gate-demo"', f'state_dir = "{tmp_path / "state"}"')
    demo = demo.replace('path = "demo-frames"', f'path = "{REPO / "config" / "demo-frames"}"')
    demo = demo.replace('path = "demo-allowlist.csv"',
                        f'path = "{REPO / "config" / "demo-allowlist.csv"}"')
    config = tmp_path / "demo.toml"
    config.write_text(demo)
    result = run_gate(config)
    assert result.returncode == 0, result.stdout + result.stderr
    verdicts = [(d["verdict"], d["reason"]) for d in decisions(journal_events(tmp_path / "state"))]
    assert verdicts == [("grant", "ok"), ("deny", "unknown"), ("deny", "expired"), ("grant", "ok")]



def test_daemon_stalled_picamera2_exits_nonzero_with_the_relay_locked(tmp_path: Path) -> None:
    """The Pi camera path (fake picamera2 module, see tests/fakes): a grant, then frames stop;
    the daemon gives up after stall_timeout_s with exit 1, so systemd restarts it."""
    import os

    from tests.support.daemon import FAKES
    write_frames(tmp_path / "cam", [ALICE] * 2 + [None] * 2)
    config = setup(tmp_path, [None], camera={"source": "picamera2", "stall_timeout_s": 0.5},
                   door={"open_s": 30.0})
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAKE_PICAMERA2_")}
    env |= {"PYTHONPATH": os.pathsep.join([str(FAKES), str(REPO)]),
            "FAKE_PICAMERA2_FRAMES": str(tmp_path / "cam"), "FAKE_PICAMERA2_STALL_AFTER": "4"}
    result = run_gate(config, env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "no frame for 0.5 s" in result.stdout + result.stderr
    events = journal_events(tmp_path / "state")
    assert [d["verdict"] for d in decisions(events)] == ["grant"]
    assert door_states(events) == ["unlocked", "locked"]  # locked on the way out, mid-pulse
