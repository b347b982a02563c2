"""Signed passes end to end at the gate: gate-server (a subprocess on SQLite) issues a pass,
segno draws its QR, the gate decides it through the real decoder: online first (source
server, pass_id), offline from synced keys (source pass), revoked after a sync while the
server is down, from a keys_file alone, a flipped byte, and a rotating code at T and T+120 s
on the chain's clock seam."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory

from tests.support.daemon import REPO, GateProcess, gate_config, write_allowlist
from tests.support.gatehelpers import ROWS, events_where, running_gate, wait_event, wait_until
from tests.support.passhelpers import cose, text_of
from tests.support.qrimages import write_frames

pytest.importorskip("gate_server")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class GateServer:
    """gate-server through its CLI: enrolment commands, and `serve` as a subprocess."""

    def __init__(self, tmp_path: Path) -> None:
        self.db = f"sqlite:///{tmp_path / 'gs.db'}"
        self.secret = tmp_path / "pass-secret"
        self.token = tmp_path / "token"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def cli(self, *args: str) -> Any:
        """The CLI in this process (imports once: the machine is shared); `serve` below is a
        real subprocess."""
        from gate_server.cli import main
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = main(["--db", self.db, "--secret-file", str(self.secret), *args])
        assert rc == 0, err.getvalue()
        text = out.getvalue()
        return json.loads(text) if text.strip().startswith("{") else text

    def setup(self) -> None:
        self.cli("init")
        self.cli("site", "add", "hq", "--timezone", "Europe/Berlin")
        self.cli("gate", "add", "gate-1", "--site", "hq", "--token-file", str(self.token))

    def issue(self, out: Path, *extra: str) -> tuple[str, str]:
        info = self.cli("pass", "issue", "--site", "hq", "--holder", "Ann", "--qr-text",
                        str(out), *extra)
        return str(info["id"]), out.read_text().strip()

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gate_server", "--db", self.db, "--secret-file",
             str(self.secret), "serve", "--listen", f"127.0.0.1:{self.port}"], cwd=REPO,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def up() -> bool:
            with contextlib.suppress(OSError), socket.create_connection(
                    ("127.0.0.1", self.port), timeout=0.2):
                return True
            assert self.proc is not None and self.proc.poll() is None, "gate-server exited"
            return False
        wait_until(up, 30, "gate-server listening")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
            self.proc = None


@pytest.fixture
def gs(tmp_path: Path) -> Iterator[GateServer]:
    server = GateServer(tmp_path)
    server.setup()
    yield server
    server.stop()


def config(tmp_path: Path, frames: list[Any], **sections: dict[str, Any]) -> Path:
    write_frames(tmp_path / "frames", frames)
    allowlist = write_allowlist(tmp_path / "allow.csv", ROWS)
    base: dict[str, dict[str, Any]] = {
        "gate": {"id": "gate-1", "timezone": "Europe/Berlin"},
        "camera": {"loop": True, "fps": 20}, "decoder": {"leave_s": 0.2},
        "lockout": {"max_denials": 0}}
    for name, keys in sections.items():
        base.setdefault(name, {}).update(keys)
    return gate_config(tmp_path, tmp_path / "frames", allowlist, **base)


def server_section(gs: GateServer) -> dict[str, Any]:
    return {"url": gs.url, "token_file": str(gs.token), "timeout_s": 1.0,
            "sync_interval_s": 1, "upload_interval_s": 1}


def decisions(state: Path, **match: Any) -> list[dict[str, Any]]:
    return events_where(state, kind="decision", **match)


@pytest.mark.slow  # two subprocesses (gate-server serve, gate run)
def test_pass_online_then_offline_then_revoked_offline(gs: GateServer, tmp_path: Path) -> None:
    pass_id, text = gs.issue(tmp_path / "pass.txt")
    assert text.startswith("GP1:")
    gs.start()
    cfg = config(tmp_path, [text] + [None] * 6, server=server_section(gs))
    state = tmp_path / "state"
    gate = GateProcess(cfg)
    try:
        online = wait_event(state, 30, kind="decision", source="server")
        assert (online["verdict"], online["pass_id"]) == ("grant", pass_id)
        gate.wait_for(r"revocations: full set", 30)   # the first sync took keys and the set
        assert (state / "pass_keys.json").stat().st_mode & 0o777 == 0o600
        gs.stop()
        offline = wait_event(state, 30, kind="decision", source="pass")
        assert (offline["verdict"], offline["reason"], offline["pass_id"]) == (
            "grant", "ok", pass_id)

        gs.cli("pass", "revoke", pass_id)              # while the server is down
        gs.start()
        gate.wait_for(r"revocations: delta, \+1 -0", 30)
        gs.stop()
        revoked = wait_event(state, 30, kind="decision", source="pass", reason="revoked")
        assert (revoked["verdict"], revoked["pass_id"]) == ("deny", pass_id)
    finally:
        gate.signal(signal.SIGTERM)
        assert gate.wait() == 0, gate.output
    journal = (state / "journal.db").read_bytes()
    assert text.encode() not in journal and text[4:40].encode() not in journal
    assert text[4:40] not in gate.output


def test_keys_file_only_grants_and_a_flipped_byte_is_bad_signature(
        gs: GateServer, tmp_path: Path) -> None:
    pass_id, text = gs.issue(tmp_path / "pass.txt")
    gs.cli("keys", "export", "--out", str(tmp_path / "keys.json"))
    raw = cose(text)
    raw[-5] ^= 0x01                                   # inside the signature
    forged = text_of(raw)
    cfg = config(tmp_path, [text, None, None, forged, None, None],
                 passes={"keys_file": str(tmp_path / "keys.json")},
                 gate={"id": "gate-1", "timezone": "Europe/Berlin", "site": "hq"})
    state = tmp_path / "state"
    with running_gate(cfg, MockFactory()):
        good = wait_event(state, 20, kind="decision", reason="ok")
        bad = wait_event(state, 20, kind="decision", reason="bad_signature")
    assert (good["verdict"], good["source"], good["pass_id"]) == ("grant", "pass", pass_id)
    assert (bad["verdict"], bad["source"]) == ("deny", "pass") and "pass_id" not in bad


class At:
    """The chain's `now` seam: each decision is taken at the next of `times` (trusted time
    moves forward with it, as it would on a gate whose clock reads those times)."""

    def __init__(self, inner: Any, times: list[float]) -> None:
        self.inner, self.times = inner, times

    def check(self, code_sha256: str, code: bytes, now: float) -> Any:
        at = self.times.pop(0) if len(self.times) > 1 else self.times[0]
        return self.inner.check(code_sha256, code, at)


@pytest.mark.slow  # gate-server serve as a subprocess
def test_rotating_pass_grants_at_t_and_is_stale_two_minutes_later(
        gs: GateServer, tmp_path: Path) -> None:
    from gate.central.client import ServerClient
    from gate.central.keysync import PassKeys, PassSync
    from gate.config import load_config
    from gate.passes import RevocationStore

    pass_id, _ = gs.issue(tmp_path / "static.txt", "--rotating")
    t = (int(time.time()) // 30 + 120) * 30 + 15      # an hour on, mid-step
    iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
    gs.cli("pass", "show", pass_id, "--at", iso, "--qr-text", str(tmp_path / "at-t.txt"))
    shown = (tmp_path / "at-t.txt").read_text().strip()
    assert "*" in shown
    cfg_path = config(tmp_path, [shown] + [None] * 6, server=server_section(gs))
    cfg = load_config(cfg_path)
    state = tmp_path / "state"
    state.mkdir(exist_ok=True)
    gs.start()                                        # one real sync, then the server is gone
    assert cfg.server is not None
    client = ServerClient(cfg.server, "gate-1", gs.token.read_text().strip())
    revocations = RevocationStore(state / "revocations.db")
    try:
        PassSync(client, PassKeys(state, None), revocations, 60).sync_once()
    finally:
        client.close()
        revocations.close()
    gs.stop()

    def at_t(gate: Any) -> None:
        gate.chain = At(gate.chain, [t, t + 120])
    with running_gate(cfg_path, MockFactory(), prepare=at_t):
        wait_until(lambda: len(decisions(state)) >= 2, 20, "two decisions")
    first, second = decisions(state)[:2]
    assert (first["verdict"], first["source"], first["pass_id"]) == ("grant", "pass", pass_id)
    assert (second["verdict"], second["reason"], second["pass_id"]) == (
        "deny", "stale_code", pass_id)
    assert os.stat(state / "pass_keys.json").st_mode & 0o777 == 0o600


def test_a_broken_keys_file_is_a_config_error_with_the_relay_locked(tmp_path: Path) -> None:
    from gate.config import load_config
    from gate.daemon import Gate
    from gate.errors import ConfigError
    (tmp_path / "keys.json").write_text('{"keys": [{"kid": "zz"}]}')
    cfg = config(tmp_path, [None], passes={"keys_file": str(tmp_path / "keys.json")})
    factory = MockFactory()
    with pytest.raises(ConfigError, match=r"\[passes\] keys_file"):
        Gate(load_config(cfg), threading.Event(), pin_factory=factory)
    assert factory.pin(17).state is False   # claimed, driven locked, released


def test_check_config_refuses_a_broken_keys_file_like_run(tmp_path: Path) -> None:
    """The preflight `run` and `check-config` share reads the keys file too: exit 2, before
    any pin is claimed, naming the key."""
    import subprocess
    import sys
    (tmp_path / "keys.json").write_text('{"keys": [{"kid": "zz"}]}')
    cfg = config(tmp_path, [None], passes={"keys_file": str(tmp_path / "keys.json")})
    out = subprocess.run([sys.executable, "-m", "gate", "check-config", "--config", str(cfg)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "[passes] keys_file" in out.stderr
