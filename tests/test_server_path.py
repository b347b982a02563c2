"""The central-server path against gate-server (on SQLite, behind a real uvicorn) and a
misbehaving server: online verification, the offline policy, credential sync and journal
upload, with faults. gate-server's own API tests are in tests/server/."""

from __future__ import annotations

import ssl
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from gate.central.client import ServerClient, ServerUnavailable
from gate.central.sync import CredentialSync, EventUploader
from gate.config import Config, PolicySection, ServerSection
from gate.journal import Journal
from gate.verify import build_chain
from gate.verify.credentials import SERVER, Credential, CredentialStore, hash_code
from gate.verify.online import LAST_SYNC_KEY, ServerCheck
from tests.support.badserver import BadServer, free_port_url, make_ca, make_server_cert, server_ssl_context
from tests.support.server import Running, enrol, serving, sqlite_server, stored_events

TOKEN = "test-token-0123456789"
TIMEOUT_S = 0.3
MARGIN_S = 1.0  # generous: CI machines are slow; the budget itself is TIMEOUT_S
CODE = "PASS-0001"
STATUS = {"green": "grant", "yellow": "staff", "red": "deny", "black": "deny"}


LONG_AGO = datetime(2020, 1, 1, tzinfo=timezone.utc)  # before gate-server's test clock


def client_for(url: str, token: str = TOKEN, **server_keys) -> ServerClient:
    return ServerClient(ServerSection(url=url, timeout_s=TIMEOUT_S, **server_keys), "gate-1",
                        token)


def online(url: str, token: str = TOKEN, **server_keys) -> ServerCheck:
    return ServerCheck(client_for(url, token, **server_keys), TIMEOUT_S, STATUS)


def central_client(central: Running) -> ServerClient:
    return client_for(central.url, central.server.tokens["gate-1"])


def central_online(central: Running) -> ServerCheck:
    return ServerCheck(central_client(central), TIMEOUT_S, STATUS)


def check(verifier, code: str = CODE):
    return verifier.check(hash_code(code), code.encode(), time.time())


# -- online verification ------------------------------------------------------------------

def test_online_verifier_answers_grant_deny_and_staff(central: Running) -> None:
    srv = central.server
    enrol(srv, "PASS-GREEN", "Green", status="green")
    enrol(srv, "PASS-YELLOW", "Yellow", status="yellow")
    plain = enrol(srv, "PASS-PLAIN", "Plain")
    enrol(srv, "PASS-OLD", "Old", valid_until=LONG_AGO)
    v = central_online(central)
    d = check(v, "PASS-PLAIN")
    assert (d.verdict, d.source, d.label) == ("grant", "server", "Plain")
    assert check(v, "PASS-GREEN").verdict == "grant"
    staff = check(v, "PASS-YELLOW")
    assert (staff.verdict, staff.reason) == ("staff", "status_yellow")
    assert (check(v, "PASS-OLD").verdict, check(v, "PASS-OLD").reason) == ("deny", "expired")
    assert check(v, "NOBODY").reason == "unknown"
    srv.revoke(plain)
    assert check(v, "PASS-PLAIN").reason == "revoked"
    assert v.reachable is True
    v.close()


def test_status_colour_is_mapped_and_the_stricter_verdict_wins(central: Running) -> None:
    enrol(central.server, "PASS-RED", "Red", status="red")
    enrol(central.server, "PASS-OLD-GREEN", valid_until=LONG_AGO, status="green")
    v = central_online(central)
    assert check(v, "PASS-RED").verdict == "deny"
    # A green colour never turns the server's deny into a grant.
    assert check(v, "PASS-OLD-GREEN").verdict == "deny"
    # The gate's own map decides too: a technician may send yellow to deny.
    v.status_map = {**STATUS, "green": "staff"}
    enrol(central.server, "PASS-GREEN", status="green")
    d = check(v, "PASS-GREEN")
    assert (d.verdict, d.reason) == ("staff", "status_green")
    v.close()


# -- faults: every case decides within the budget, by the configured policy ----------------

def chain_with_cache(store: CredentialStore, url: str, offline: str, **server_keys):
    cfg = Config(server=ServerSection(url=url, timeout_s=TIMEOUT_S, **server_keys),
                 policy=PolicySection(offline=offline))  # type: ignore[arg-type]
    v = online(url, **server_keys)
    return build_chain(cfg, store, v), v


@pytest.fixture
def cached_store(tmp_path: Path) -> CredentialStore:
    """A cache that knows CODE from an earlier sync, synced just now."""
    store = CredentialStore(tmp_path / "cred.db")
    store.replace(SERVER, [Credential(hash_code(CODE), SERVER, "c1", "Cached Carl")],
                  {LAST_SYNC_KEY: str(time.time())})
    return store


FAULTS = ["slow", "500", "garbage", "close", "bad_decision", "down"]


@pytest.mark.parametrize("offline", ["cache", "deny"])
@pytest.mark.parametrize("fault", FAULTS)
def test_fault_decides_within_budget_by_policy(fault: str, offline: str,
                                               cached_store: CredentialStore) -> None:
    server = BadServer(mode=fault, delay_s=TIMEOUT_S + 2.0)
    with server:
        url = free_port_url() if fault == "down" else server.url
        chain, v = chain_with_cache(cached_store, url, offline)
        started = time.monotonic()
        decision = chain.check(hash_code(CODE), CODE.encode(), time.time())
        elapsed = time.monotonic() - started
        v.close()
    assert elapsed < TIMEOUT_S + MARGIN_S, f"{fault}: {elapsed:.2f} s"
    assert v.reachable is False
    if offline == "cache":
        assert (decision.verdict, decision.source, decision.label) == ("grant", "cache",
                                                                        "Cached Carl")
    else:
        assert (decision.verdict, decision.reason, decision.source) == ("deny", "offline",
                                                                        "policy")


def test_healthy_server_decides_before_the_cache(cached_store: CredentialStore) -> None:
    with BadServer(mode="ok") as server:
        chain, v = chain_with_cache(cached_store, server.url, "cache")
        d = chain.check(hash_code(CODE), CODE.encode(), time.time())
        v.close()
    assert (d.verdict, d.source, d.label) == ("grant", "server", "From Server")


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    good_ca, other_ca = make_ca(d, "good-ca"), make_ca(d, "other-ca")
    return {"good_ca": good_ca[0], "other_ca": other_ca[0],
            "server": make_server_cert(d, good_ca)}


def tls_context(pki) -> ssl.SSLContext:
    return server_ssl_context(*pki["server"])


def test_tls_with_the_configured_ca_is_trusted(pki, cached_store) -> None:
    with BadServer(mode="ok", ssl_context=tls_context(pki)) as server:
        chain, v = chain_with_cache(cached_store, server.url, "deny", ca_file=pki["good_ca"])
        d = chain.check(hash_code(CODE), CODE.encode(), time.time())
        v.close()
    assert (d.verdict, d.source) == ("grant", "server")


@pytest.mark.parametrize("offline", ["cache", "deny"])
def test_tls_certificate_from_the_wrong_ca_is_server_unavailable(pki, cached_store, offline,
                                                                 monkeypatch) -> None:
    # The environment must not change TLS trust: REQUESTS_CA_BUNDLE points at the server's CA.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(pki["good_ca"]))
    monkeypatch.setenv("CURL_CA_BUNDLE", str(pki["good_ca"]))
    with BadServer(mode="ok", ssl_context=tls_context(pki)) as server:
        chain, v = chain_with_cache(cached_store, server.url, offline, ca_file=pki["other_ca"])
        started = time.monotonic()
        d = chain.check(hash_code(CODE), CODE.encode(), time.time())
        elapsed = time.monotonic() - started
        v.close()
    assert elapsed < TIMEOUT_S + MARGIN_S
    assert d.source == ("cache" if offline == "cache" else "policy")


def test_busy_pool_still_answers_within_budget(cached_store) -> None:
    """Several codes in a row against a stalled server: none waits behind another."""
    with BadServer(mode="slow", delay_s=3.0) as server:
        chain, v = chain_with_cache(cached_store, server.url, "cache")
        for _ in range(4):
            started = time.monotonic()
            d = chain.check(hash_code(CODE), CODE.encode(), time.time())
            assert time.monotonic() - started < TIMEOUT_S + MARGIN_S
            assert d.source == "cache"
        v.close()


# -- credential sync ------------------------------------------------------------------------

def test_cache_not_synced_within_max_age_no_longer_grants(cached_store: CredentialStore) -> None:
    cfg = Config(server=ServerSection(url="http://127.0.0.1:1"),
                 policy=PolicySection(max_cache_age_s=3600))
    chain = build_chain(cfg, cached_store, online(free_port_url()))
    assert chain.check(hash_code(CODE), CODE.encode(), time.time()).verdict == "grant"
    cached_store.set_meta({LAST_SYNC_KEY: str(time.time() - 7200)})
    d = chain.check(hash_code(CODE), CODE.encode(), time.time())
    assert (d.verdict, d.reason, d.source) == ("deny", "cache_stale", "cache")


@pytest.mark.parametrize("bad_row", [{"id": "2", "code_sha256": "not-hex"},
                                     {"id": "3", "code_sha256": hash_code("BADTIME"),
                                      "valid_until": "tomorrow"},
                                     "not an object"])
def test_sync_refuses_a_full_list_with_a_malformed_row_whole(tmp_path: Path, bad_row) -> None:
    """A row off the contract makes the whole reply junk: the old cache and cursor stay."""
    from gate.central.client import CredentialsPage
    from gate.central.replies import ServerUnavailable
    store = CredentialStore(tmp_path / "cred.db")
    store.replace(SERVER, [Credential(hash_code("OLD"), "Old")], {"server.cursor": "1"})
    sync = CredentialSync(client_for("http://127.0.0.1:1"), store, 60)
    page = CredentialsPage(cursor="7", full=True, etag=None, credentials=[
        {"id": "1", "code_sha256": hash_code("GOOD")}, bad_row,
        {"id": "4", "code_sha256": hash_code("AFTER")}])
    with pytest.raises(ServerUnavailable, match="bad_reply"):
        sync._apply(page, str(time.time()), None)
    assert store.lookup(hash_code("OLD"), SERVER) is not None
    assert store.lookup(hash_code("GOOD"), SERVER) is None
    assert store.get_meta("server.cursor") == "1"


def test_sync_failure_keeps_the_cache(cached_store: CredentialStore) -> None:
    with BadServer(mode="garbage") as server:
        sync = CredentialSync(client_for(server.url), cached_store, 60)
        with pytest.raises(ServerUnavailable):
            sync.sync_once()
    assert cached_store.lookup(hash_code(CODE), SERVER).label == "Cached Carl"


# -- journal upload -------------------------------------------------------------------------

def test_upload_marks_events_only_after_the_server_stored_them(central: Running,
                                                               tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.db", "gate-1")
    for i in range(5):
        journal.record("system", event="test", n=i)
    down = EventUploader(client_for(free_port_url()), journal, 1, 2, 60)
    with pytest.raises(ServerUnavailable):
        down.upload_once()
    assert len(journal.pending(100)) == 5
    assert down.run_once() >= 1  # backs off
    up = EventUploader(central_client(central), journal, 1, 2, 60)
    while up.upload_once():
        pass
    assert journal.pending(100) == []
    stored = stored_events(central.server)
    assert sorted(e["n"] for e in stored) == list(range(5))


def test_upload_backoff_grows_to_its_cap(tmp_path) -> None:
    journal = Journal(tmp_path / "journal.db", "gate-1")
    journal.record("system", event="x")
    up = EventUploader(client_for(free_port_url()), journal, 1, 10, 8)
    waits = [up.run_once() for _ in range(6)]
    assert waits == [1, 2, 4, 8, 8, 8]


def test_cached_status_colour_applies_offline(tmp_path: Path) -> None:
    """A code that is red on the server stays shut offline too; yellow asks for staff."""
    store = CredentialStore(tmp_path / "cred.db")
    store.replace(SERVER, [Credential(hash_code("RED"), SERVER, "r", "Red", status="red"),
                           Credential(hash_code("YEL"), SERVER, "y", "Yel", status="yellow"),
                           Credential(hash_code("PUR"), SERVER, "p", "Pur", status="purple")],
                  {LAST_SYNC_KEY: str(time.time())})
    chain, v = chain_with_cache(store, free_port_url(), "cache")
    now = time.time()
    assert (chain.check(hash_code("RED"), b"RED", now).reason) == "status_red"
    yel = chain.check(hash_code("YEL"), b"YEL", now)
    assert (yel.verdict, yel.source) == ("staff", "cache")
    assert chain.check(hash_code("PUR"), b"PUR", now).verdict == "deny"
    v.close()


def test_sync_keeps_the_status_colour(central: Running, tmp_path: Path) -> None:
    enrol(central.server, "Y-1", "Y", status="yellow")
    store = CredentialStore(tmp_path / "cred.db")
    CredentialSync(central_client(central), store, 60).sync_once()
    assert store.lookup(hash_code("Y-1"), SERVER).status == "yellow"


def test_upload_sets_aside_an_event_the_server_refuses(central: Running, tmp_path) -> None:
    journal = Journal(tmp_path / "journal.db", "gate-1")
    journal.record("system", event="before")
    # An event the server's schema refuses (no valid "at"), written as a broken gate might.
    journal._db.execute("INSERT INTO events (id, at, kind, body) VALUES (?, ?, ?, ?)",
                        ("bad-1", "2026-01-01T00:00:00.000Z", "system",
                         '{"id": "bad-1", "at": "yesterday", "gate": "gate-1", "kind": "system"}'))
    journal.record("system", event="after")
    up = EventUploader(central_client(central), journal, 1, 10, 60)
    assert up.upload_once() == 3
    assert journal.pending(10) == []
    assert [e["event"] for e in stored_events(central.server)] == ["before", "after"]
    assert [(d["event"]["id"], d["reason"]) for d in journal.dead_letters()] == [
        ("bad-1", "rejected")]


@pytest.fixture(scope="module")
def client_pki(pki, tmp_path_factory):
    d = tmp_path_factory.mktemp("client-pki")
    client_ca = make_ca(d, "client-ca")
    return {"client_ca": client_ca[0], "door": make_server_cert(d, client_ca, "door")}


def test_mutual_tls_client_certificate_is_presented(pki, client_pki, cached_store) -> None:
    context = server_ssl_context(*pki["server"], client_ca_file=client_pki["client_ca"])
    with BadServer(mode="ok", ssl_context=context) as server:
        cert, key = client_pki["door"]
        chain, v = chain_with_cache(cached_store, server.url, "deny", ca_file=pki["good_ca"],
                                    client_cert=cert, client_key=key)
        with_cert = chain.check(hash_code(CODE), CODE.encode(), time.time())
        v.close()
        chain, v = chain_with_cache(cached_store, server.url, "deny", ca_file=pki["good_ca"])
        without = chain.check(hash_code(CODE), CODE.encode(), time.time())
        v.close()
    assert (with_cert.verdict, with_cert.source) == ("grant", "server")
    assert (without.verdict, without.source) == ("deny", "policy")


def test_gate_server_over_tls_with_the_configured_ca(pki, gs_sqlite_template,
                                                     tmp_path: Path) -> None:
    """gate-server behind uvicorn's own TLS: the gate trusts it through ca_file only."""
    srv = sqlite_server(gs_sqlite_template, tmp_path)
    enrol(srv, CODE, "Tina")
    cert, key = pki["server"]
    with serving(srv, ssl_certfile=cert, ssl_keyfile=key) as running:
        token = srv.tokens["gate-1"]
        trusted = online(running.url, token, ca_file=pki["good_ca"])
        d = check(trusted)
        trusted.close()
        stranger = online(running.url, token, ca_file=pki["other_ca"])
        with pytest.raises(ServerUnavailable):
            stranger.client.verify(CODE.encode(), "2026-03-01T12:00:00Z", TIMEOUT_S)
        stranger.close()
    assert running.url.startswith("https://")
    assert (d.verdict, d.source, d.label) == ("grant", "server", "Tina")


def test_raw_codes_verified_online_never_reach_gate_servers_database(central: Running,
                                                                     tmp_path: Path) -> None:
    payload = "SECRET-PAYLOAD-7f3a9"
    pid = enrol(central.server, payload, "Secret")
    v = central_online(central)
    assert check(v, payload).verdict == "grant"
    assert check(v, payload + "-unknown").reason == "unknown"
    central.server.revoke(pid)
    assert check(v, payload).reason == "revoked"
    v.close()
    central.server.app.state.engine.dispose()  # everything on disk, WAL included
    blob = b"".join(p.read_bytes() for p in tmp_path.glob("gate-server.db*"))
    assert hash_code(payload).encode() in blob
    assert payload.encode() not in blob
