"""The daemon with a central server, as a subprocess: kill -9 in the middle of a sync or with
events not yet uploaded loses nothing; a misbehaving server never crashes the daemon."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from gate.verify.credentials import SERVER, Credential, CredentialStore, hash_code
from gate.verify.online import LAST_SYNC_KEY
from tests.support.badserver import BadServer, free_port_url
from tests.support.daemon import REPO, gate_config, journal_events, run_gate, write_allowlist
from tests.support.qrimages import write_frames
from tests.support.server import Running, enrol, serving, sqlite_server, stored_events

pytestmark = pytest.mark.slow  # gate run subprocesses against servers, kill -9

TOKEN = "daemon-test-token"
GATE_ID = "test-gate"  # tests.support.daemon.gate_config's [gate] id
ALICE, SAM = "SRV-TEST-ALICE", "SRV-TEST-SAM"
OLD_ROWS = [Credential(hash_code(f"OLD-{i}"), SERVER, f"o{i}", f"Old {i}") for i in range(3)]


@contextmanager
def central(template: Path, tmp_path: Path, port: int = 0) -> Iterator[Running]:
    """gate-server behind uvicorn, with this gate enrolled and its token in tmp_path/token."""
    srv = sqlite_server(template, tmp_path)
    srv.gate(GATE_ID)
    with serving(srv, port) as running:
        yield running


def server_config(tmp_path: Path, url: str, sequence: list, token: str = TOKEN,
                  **overrides: dict) -> Path:
    frames = tmp_path / "frames"
    if not frames.exists():
        write_frames(frames, sequence)
    allowlist = write_allowlist(tmp_path / "allow.csv", [f"{ALICE},Alice,,"])
    (tmp_path / "token").write_text(token + "\n")
    server = {"url": url, "token_file": str(tmp_path / "token"), "timeout_s": 0.3,
              "sync_interval_s": 1, "upload_interval_s": 0.2, "upload_max_backoff_s": 1}
    server.update(overrides.pop("server", {}))
    return gate_config(tmp_path, frames, allowlist, server=server, **overrides)


def seed_old_cache(state: Path) -> None:
    store = CredentialStore(state / "credentials.db")
    store.replace(SERVER, OLD_ROWS, {LAST_SYNC_KEY: str(time.time()), "server.cursor": "1"})
    store.close()


def assert_old_cache_whole(state: Path) -> None:
    with sqlite3.connect(state / "credentials.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    store = CredentialStore(state / "credentials.db")
    assert store.count(SERVER) == len(OLD_ROWS)
    for cred in OLD_ROWS:
        assert store.lookup(cred.code_sha256, SERVER).label == cred.label
    assert store.get_meta("server.cursor") == "1"
    store.close()


def test_kill_9_during_sync_download_leaves_the_old_cache_whole(tmp_path: Path,
                                                                 gate_process) -> None:
    state = tmp_path / "state"
    seed_old_cache(state)
    with BadServer(mode="stall_body", delay_s=30) as server:
        gate = gate_process(server_config(tmp_path, server.url, [None] * 400))
        gate.wait_for("running")
        assert server.body_started.wait(20), gate.output
        gate.kill()
    assert_old_cache_whole(state)


def test_kill_9_while_sync_writes_the_cache_leaves_the_old_cache_whole(tmp_path: Path) -> None:
    state = tmp_path / "state"
    seed_old_cache(state)
    with BadServer(mode="big_list") as server:
        server.list_rows = 300_000
        config = server_config(tmp_path, server.url, [None])
        proc = subprocess.Popen([sys.executable, "-m", "gate", "sync", "--config", str(config)],
                                stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                                cwd=REPO)
        assert proc.stderr is not None
        seen = []
        for line in proc.stderr:  # "store: N of M" is printed inside the write transaction
            seen.append(line)
            if "store: 50000" in line or "store: 100000" in line:
                proc.send_signal(signal.SIGKILL)
                break
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL, "".join(seen)
    assert_old_cache_whole(state)
    # ... and the next sync completes the job.
    with BadServer(mode="big_list") as server:
        server.list_rows = 20
        config = server_config(tmp_path, server.url, [None])
        subprocess.run([sys.executable, "-m", "gate", "sync", "--config", str(config)],
                       check=True, capture_output=True, cwd=REPO)
    assert CredentialStore(state / "credentials.db").count(SERVER) == 20


def test_kill_9_with_events_not_uploaded_loses_none(tmp_path: Path, gate_process,
                                                    gs_sqlite_template: Path) -> None:
    url = free_port_url()  # nobody listens yet: uploads fail, events wait in the outbox
    config = server_config(tmp_path, url, [ALICE] * 2 + [None] * 12, camera={"loop": True},
                           decoder={"leave_s": 0.2})
    gate = gate_process(config)
    gate.wait_for("decision: grant")
    gate.wait_for("decision: grant")
    gate.kill()
    first_run = [e["id"] for e in journal_events(tmp_path / "state")]
    assert len(first_run) >= 4
    port = int(url.rsplit(":", 1)[1])
    with central(gs_sqlite_template, tmp_path, port) as running:
        (tmp_path / "token").write_text(running.server.tokens[GATE_ID] + "\n")
        gate = gate_process(config)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            stored = {e["id"] for e in stored_events(running.server, GATE_ID)}
            if set(first_run) <= stored:
                break
            time.sleep(0.1)
        gate.signal(signal.SIGTERM)
        assert gate.wait() == 0, gate.output
        stored_ids = [e["id"] for e in stored_events(running.server, GATE_ID)]
    assert set(first_run) <= set(stored_ids), gate.output
    assert len(stored_ids) == len(set(stored_ids))  # each exactly once


def test_daemon_with_a_misbehaving_server_decides_by_policy_and_never_crashes(
        tmp_path: Path) -> None:
    with BadServer(mode="garbage") as server:
        config = server_config(tmp_path, server.url, [SAM] * 2 + [None] * 4 + [ALICE] * 2
                               + [None] * 4)
        result = run_gate(config)
    assert result.returncode == 0, result.stdout + result.stderr
    decisions = [e for e in journal_events(tmp_path / "state") if e["kind"] == "decision"]
    assert [(d["verdict"], d["source"]) for d in decisions] == [("deny", "none"),
                                                                 ("grant", "list")]
    assert "central server unavailable" in result.stderr


def test_daemon_offline_deny_policy_refuses_even_listed_codes(tmp_path: Path) -> None:
    config = server_config(tmp_path, free_port_url(), [ALICE] * 2 + [None] * 4,
                           policy={"offline": "deny"})
    result = run_gate(config)
    assert result.returncode == 0, result.stdout + result.stderr
    [d] = [e for e in journal_events(tmp_path / "state") if e["kind"] == "decision"]
    assert (d["verdict"], d["reason"], d["source"]) == ("deny", "offline", "policy")


def test_daemon_verifies_online_with_gate_server(tmp_path: Path,
                                                 gs_sqlite_template: Path) -> None:
    with central(gs_sqlite_template, tmp_path) as running:
        enrol(running.server, SAM, "Server Sam")
        config = server_config(tmp_path, running.url, [SAM] * 2 + [None] * 10,
                               running.server.tokens[GATE_ID])
        result = run_gate(config)
        assert result.returncode == 0, result.stdout + result.stderr
    [d] = [e for e in journal_events(tmp_path / "state") if e["kind"] == "decision"]
    assert (d["verdict"], d["source"], d["label"]) == ("grant", "server", "Server Sam")


def test_missing_token_file_is_a_config_error(tmp_path: Path) -> None:
    config = server_config(tmp_path, free_port_url(), [None],
                           server={"token_file": str(tmp_path / "missing-token")})
    result = run_gate(config)
    assert result.returncode == 2
    assert "token_file" in result.stdout + result.stderr
    assert TOKEN not in result.stdout + result.stderr




def test_daemon_decides_a_binary_qr_payload_online_by_its_exact_bytes(
        tmp_path: Path, gs_sqlite_template: Path) -> None:
    """A real QR image holding bytes that are not UTF-8, through the real decoder: the
    gate-server grants the enrolled bytes via code_b64 and refuses a look-alike."""
    import hashlib
    enrolled, look_alike = b"\xffGATE-BIN\x01", b"\xfeGATE-BIN\x01"
    with central(gs_sqlite_template, tmp_path) as running:
        enrol(running.server, enrolled, "Binary Bea")
        config = server_config(tmp_path, running.url, [enrolled] * 2 + [None] * 6
                               + [look_alike] * 2 + [None] * 6, running.server.tokens[GATE_ID])
        result = run_gate(config)
        assert result.returncode == 0, result.stdout + result.stderr
    decisions = [e for e in journal_events(tmp_path / "state") if e["kind"] == "decision"]
    assert [(d["verdict"], d["source"], d["label"]) for d in decisions] == [
        ("grant", "server", "Binary Bea"), ("deny", "server", "")]
    assert [d["code_sha256"] for d in decisions] == [hashlib.sha256(p).hexdigest()
                                                     for p in (enrolled, look_alike)]
    status = json.loads((tmp_path / "state" / "status.json").read_text())
    assert status["dead_letters"] == 0
