"""The trusted clock: a wall clock set back never re-validates an expired pass or refreshes a
stale cache; the mark survives a reboot with a dead RTC; a server Date moves it only within
its bound. Fake wall and monotonic clocks throughout: nothing sleeps."""

from __future__ import annotations

import json
import sqlite3
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory

from gate.central.client import ServerClient
from gate.clock import SERVER_AHEAD_MAX_S, TrustedClock, latest_journal_time
from gate.config import ServerSection
from gate.journal import Journal
from gate.verify import StoreVerifier, VerifierChain
from gate.verify.credentials import LIST, SERVER, Credential, CredentialStore, hash_code
from gate.verify.online import LAST_SYNC_KEY, CacheVerifier
from tests.support.daemon import write_allowlist
from tests.support.gatehelpers import ALICE, events_where, running_gate, setup_config, wait_event

T = 1_780_000_000.0   # "now", 2026
DAY = 86400.0


class Clocks:
    """A wall clock and a monotonic clock the test moves by hand."""

    def __init__(self, wall: float = T, mono: float = 1000.0) -> None:
        self.wall, self.mono = wall, mono

    def advance(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds

    def clock(self, path: Path | None = None, **kw: Any) -> TrustedClock:
        return TrustedClock(path, wall=lambda: self.wall, mono=lambda: self.mono, **kw)


def test_clock_a_wall_clock_set_back_is_not_believed_and_is_a_fault() -> None:
    c = Clocks()
    faults: list[tuple[bool, float]] = []
    clock = c.clock(on_fault=lambda active, behind: faults.append((active, behind)))
    assert clock.now() == T and not clock.fault
    c.wall -= 40 * DAY  # the RTC jumped back 40 days
    assert clock.now() == T
    c.advance(10)       # trusted time keeps running from the mark, on the monotonic clock
    assert clock.now() == T + 10
    assert clock.fault and faults == [(True, 40 * DAY)]
    c.wall = T + 11     # NTP put it right
    assert clock.now() == T + 11 and not clock.fault
    assert faults[-1] == (False, 0.0)


def test_clock_a_small_step_back_is_no_fault() -> None:
    c = Clocks()
    clock = c.clock()
    clock.now()
    c.wall -= 1.0
    assert clock.now() == T and not clock.fault


def test_clock_the_mark_survives_a_reboot_with_a_dead_rtc(tmp_path: Path) -> None:
    path = tmp_path / "clock.json"
    c = Clocks()
    clock = c.clock(path)
    clock.now()
    c.advance(120)
    clock.save_if_due()
    assert json.loads(path.read_text())["local"] == T + 120
    assert list(tmp_path.iterdir()) == [path], "no temporary file left behind"
    booted = Clocks(wall=0.0, mono=5.0)  # a Pi without RTC boots in 1970
    after = booted.clock(path)
    assert after.now() == T + 120 and after.fault


@pytest.mark.parametrize("junk", [b"", b"{not json", b"[1, 2]", b'{"local": "soon"}',
                                  b'{"local": 1e400}', b'{"local": -5, "server": true}'])
def test_clock_a_junk_state_file_is_ignored_not_a_crash(tmp_path: Path, junk: bytes) -> None:
    path = tmp_path / "clock.json"
    path.write_bytes(junk)
    c = Clocks()
    assert c.clock(path).now() == T


def test_clock_server_date_moves_the_mark_only_within_its_bound() -> None:
    c = Clocks()
    clock = c.clock()
    clock.server_time(T + 3600)  # the local clock is an hour slow: believe the server
    assert clock.now() == T + 3600
    clock.server_time(T + 10 * 365 * DAY)  # hostile: ten years ahead
    assert clock.now() == T + 3600
    for step in range(1, 5):  # nor can it ratchet the mark on, one bound at a time
        clock.server_time(T + step * SERVER_AHEAD_MAX_S - 1)
    assert clock.now() <= T + SERVER_AHEAD_MAX_S
    clock.server_time(float("nan"))
    clock.server_time(T - 400 * DAY)  # behind: no evidence of anything
    assert clock.now() <= T + SERVER_AHEAD_MAX_S


def test_clock_a_persisted_server_mark_is_still_bounded_after_a_reboot(tmp_path: Path) -> None:
    path = tmp_path / "clock.json"
    path.write_text(json.dumps({"local": T, "server": T + 50 * DAY}))
    assert Clocks().clock(path).now() == T


def store_with(tmp_path: Path, *creds: Credential, synced_at: float | None = None
               ) -> CredentialStore:
    store = CredentialStore(tmp_path / "credentials.db")
    store.replace(LIST, [c for c in creds if c.origin == LIST])
    meta = {LAST_SYNC_KEY: str(synced_at)} if synced_at is not None else {}
    store.replace(SERVER, [c for c in creds if c.origin == SERVER], meta)
    return store


def test_clock_an_expired_pass_stays_expired_when_the_clock_goes_back(tmp_path: Path) -> None:
    """The audit: a clock 40 days behind re-validated a pass that expired 10 days ago."""
    expired = Credential(hash_code("OLD"), label="Old", valid_until=T - 10 * DAY)
    store = store_with(tmp_path, expired)
    c = Clocks()
    chain = VerifierChain([StoreVerifier(store, LIST, source="list")], clock=c.clock())
    assert chain.check(expired.code_sha256, b"OLD", T).reason == "expired"
    back = T - 40 * DAY
    assert chain.check(expired.code_sha256, b"OLD", back).reason == "expired"
    plain = VerifierChain([StoreVerifier(store, LIST, source="list")])
    assert plain.check(expired.code_sha256, b"OLD", back).verdict == "grant"  # the bug


def test_clock_a_stale_cache_stays_stale_when_the_clock_goes_back(tmp_path: Path) -> None:
    cred = Credential(hash_code("CACHED"), origin=SERVER, cred_id="c1", label="Cal")
    store = store_with(tmp_path, cred, synced_at=T - 30 * DAY)
    c = Clocks()
    chain = VerifierChain([CacheVerifier(store, 7 * DAY, {})], clock=c.clock())
    chain.check(cred.code_sha256, b"CACHED", T)
    d = chain.check(cred.code_sha256, b"CACHED", T - 40 * DAY)
    assert (d.verdict, d.reason) == ("deny", "cache_stale")


def test_clock_latest_journal_time_reads_the_last_event(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    assert latest_journal_time(path) is None
    journal = Journal(path, "g")
    journal.record("system", event="started")
    journal.close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE events SET at = '2090-01-01T00:00:00.000Z'")
    assert latest_journal_time(path) == 3786912000.0


class DateServer:
    """Answers every request 200 `{}` with the Date header the test sets."""

    def __init__(self) -> None:
        self.date = ""
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def send_response(self, code: int, message: str | None = None) -> None:
                self.send_response_only(code, message)  # no automatic Date header
                if outer.date:
                    self.send_header("Date", outer.date)

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                body = b'{"decision": "deny", "reason": "unknown"}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.mark.parametrize(("date", "told"), [
    ("Wed, 01 Jan 2031 00:00:00 GMT", [1924992000.0]),
    ("", []), ("not a date", []), ("Wed, 99 Foo 99999 99:99:99 GMT", []),
    ("Wed, 01 Jan 2031 00:00:00 +9999", []), ("\x00" * 50, []),
])
def test_clock_server_client_feeds_reply_dates_and_ignores_junk(date: str, told: list[float]
                                                                 ) -> None:
    server = DateServer()
    server.date = date
    try:
        client = ServerClient(ServerSection(url=server.url), "g", "token")
        seen: list[float] = []
        client.on_server_time = seen.append
        assert client.verify(b"X", "2026-01-01T00:00:00Z", 2.0).decision == "deny"
        client.close()
    finally:
        server.close()
    assert seen == told


def test_clock_daemon_takes_the_journal_as_evidence_and_raises_a_clock_fault(
        tmp_path: Path) -> None:
    """A journal whose last event is in 2090 (this host's clock is decades behind it): a pass
    valid until 2080 is expired, the `clock` fault is up and journaled, the mark persisted."""
    config = setup_config(tmp_path, [None] * 2 + [ALICE] * 2 + [None] * 30)
    write_allowlist(tmp_path / "allow.csv", [f"{ALICE},Alice,2020-01-01,2080-01-01"])
    state = tmp_path / "state"
    journal = Journal(state / "journal.db", "test-gate")
    journal.record("system", event="stopped", reason="signal")
    journal.close()
    with sqlite3.connect(state / "journal.db") as db:
        db.execute("UPDATE events SET at = '2090-01-01T00:00:00.000Z'")
    with running_gate(config, MockFactory()) as gate:
        decision = wait_event(state, kind="decision")
        assert "clock" in gate.faults
    assert (decision["verdict"], decision["reason"]) == ("deny", "expired")
    assert events_where(state, kind="system", event="clock_fault")
    assert json.loads((state / "clock.json").read_text())["local"] >= 3786912000.0
