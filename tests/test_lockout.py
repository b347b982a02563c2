"""Lockout at the door: max_denials within window_s lock the scanner for cooldown_s; locked,
every code is denied locked_out without asking the server, with a `lockout` alarm; the
buttons are never locked out. Unit tests on an injected monotonic clock, then the daemon."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory

from gate.verify import Decision, VerifierChain
from gate.verify.credentials import hash_code
from gate.verify.lockout import Lockout, LockoutRule
from tests.support.daemon import gate_config, journal_events, run_gate, write_allowlist
from tests.support.gatehelpers import (
    events_where,
    running_gate,
    setup_config,
    states,
    wait_event,
    wait_until,
)
from tests.support.qrimages import write_frames

RULE = LockoutRule(max_denials=3, window_s=10.0, cooldown_s=30.0)
DENY = Decision(verdict="deny", reason="unknown", source="none")
GRANT = Decision(verdict="grant", reason="ok", source="list")
RELAY, EXIT = 17, 22


class Fixed:
    """A verifier that answers `decision` and counts how often it was asked."""

    def __init__(self, decision: Decision) -> None:
        self.decision = decision
        self.asked = 0

    def check(self, sha: str, code: bytes, now: float) -> Decision:
        self.asked += 1
        return self.decision


def lockout(rule: LockoutRule = RULE) -> tuple[Lockout, list[float], list[tuple[bool, int]]]:
    now = [0.0]
    changes: list[tuple[bool, int]] = []
    return Lockout(rule, lambda locked, n: changes.append((locked, n)),
                   clock=lambda: now[0]), now, changes


def test_lockout_max_denials_within_the_window_lock_for_the_cooldown() -> None:
    lock, now, changes = lockout()
    verifier = Fixed(DENY)
    chain = VerifierChain([verifier], lockout=lock)
    for _ in range(3):
        assert chain.check("x", b"x", 0).reason == "unknown"
        now[0] += 1
    assert changes == [(True, 3)]
    d = chain.check("y", b"y", 0)
    assert (d.verdict, d.reason, d.source) == ("deny", "locked_out", "lockout")
    assert verifier.asked == 3, "a locked scanner asks no verifier"
    now[0] = 2 + 30 - 0.01
    assert chain.check("y", b"y", 0).reason == "locked_out"
    now[0] = 2 + 30
    assert chain.check("y", b"y", 0).reason == "unknown"
    assert changes == [(True, 3), (False, 0)]


def test_lockout_denials_spread_wider_than_the_window_do_not_lock() -> None:
    lock, now, changes = lockout()
    for _ in range(10):
        lock.record(DENY)
        now[0] += 5.1  # two in any 10 s
    assert not lock.locked and changes == []


def test_lockout_grants_and_staff_verdicts_are_not_counted() -> None:
    lock, now, _ = lockout()
    for _ in range(10):
        lock.record(GRANT)
        lock.record(Decision(verdict="staff", reason="status_yellow", source="server"))
    assert not lock.locked


def test_lockout_locked_out_denials_do_not_extend_the_cooldown() -> None:
    lock, now, _ = lockout()
    chain = VerifierChain([Fixed(DENY)], lockout=lock)
    for _ in range(3):
        chain.check("x", b"x", 0)
    for _ in range(100):
        now[0] += 0.29
        chain.check("x", b"x", 0)  # hammering during the cooldown
    assert now[0] > 28.9 and lock.locked
    now[0] = 30.0
    assert not lock.locked


def test_lockout_max_denials_zero_turns_it_off() -> None:
    lock, _, _ = lockout(LockoutRule(0, 10.0, 30.0))
    for _ in range(100):
        lock.record(DENY)
    assert not lock.locked


def test_lockout_a_failing_listener_does_not_unlock() -> None:
    def boom(locked: bool, n: int) -> None:
        raise RuntimeError("journal full")

    lock = Lockout(RULE, boom, clock=lambda: 0.0)
    for _ in range(3):
        lock.record(DENY)
    assert lock.locked


# -- the daemon --------------------------------------------------------------------------------

class VerifyServer:
    """A central server on 127.0.0.1 that denies every code and logs each verify request."""

    def __init__(self) -> None:
        self.verify_times: list[float] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path.startswith("/v1/verify"):
                    outer.verify_times.append(time.monotonic())
                    self.reply({"decision": "deny", "reason": "unknown"})
                else:
                    self.reply({})

            def do_GET(self) -> None:
                self.reply({"cursor": "1", "full": True, "credentials": []})

            def reply(self, data: dict[str, Any]) -> None:
                body = json.dumps(data).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.mark.slow
def test_lockout_daemon_locks_out_a_flood_of_unknown_codes_without_asking_the_server(
        tmp_path: Path) -> None:
    codes = [f"GUESS-{i:04d}" for i in range(12)]
    sequence: list[Any] = []
    for code in codes:
        sequence += [code, None]
    sequence += [None] * 80 + ["GUESS-LATE", None, None]  # 4 s later: the cooldown is over
    write_frames(tmp_path / "frames", sequence)
    allowlist = write_allowlist(tmp_path / "allow.csv", [])
    (tmp_path / "token").write_text("t\n")
    server = VerifyServer()
    try:
        config = gate_config(tmp_path, tmp_path / "frames", allowlist,
                             server={"url": server.url, "token_file": str(tmp_path / "token"),
                                     "timeout_s": 2.0, "sync_interval_s": 3600},
                             lockout={"max_denials": 5, "window_s": 60, "cooldown_s": 3})
        result = run_gate(config)
    finally:
        server.close()
    assert result.returncode == 0, result.stdout + result.stderr
    events = journal_events(tmp_path / "state")
    decisions = [e for e in events if e["kind"] == "decision"]
    hashes = [hash_code(c) for c in codes] + [hash_code("GUESS-LATE")]
    assert [d["code_sha256"] for d in decisions] == hashes, "each code decided once, in order"
    assert [(d["reason"], d["source"]) for d in decisions] == (
        [("unknown", "server")] * 5 + [("locked_out", "lockout")] * 7
        + [("unknown", "server")])
    assert len(server.verify_times) == 6, "asked for the first 5 and the one after the cooldown"
    alarms = [(e["alarm"], e["event"]) for e in events if e["kind"] == "alarm"]
    assert alarms == [("lockout", "raised"), ("lockout", "cleared")]
    assert [e.get("denials") for e in events if e["kind"] == "alarm"][0] == 5
    assert "relay: unlocked" not in result.stderr


def test_lockout_the_exit_button_still_opens_while_the_scanner_is_locked(tmp_path: Path) -> None:
    config = setup_config(tmp_path, door={"open_s": 0.3},
                          inputs={"exit_button_pin": EXIT, "bounce_s": 0.0},
                          lockout={"max_denials": 2, "cooldown_s": 600})
    factory = MockFactory()
    with running_gate(config, factory) as gate:
        for _ in range(2):
            gate.chain.check("ab" * 32, b"x", time.time())  # two unknown codes
        assert gate.lockout.locked
        wait_event(tmp_path / "state", kind="alarm", alarm="lockout", event="raised")
        relay = factory.pin(RELAY)
        factory.pin(EXIT).drive_low()
        factory.pin(EXIT).drive_high()
        wait_until(lambda: len(relay.states) >= 3, what="relay pulse")
    assert states(relay)[:3] == [False, True, False]
    assert events_where(tmp_path / "state", kind="decision", source="exit_button")
