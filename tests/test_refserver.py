"""The reference server over real HTTP on 127.0.0.1: auth, verify, credentials sync, events, CLI."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests

from gate.refserver import ReferenceServer, Store, main, server_ssl_context

REPO = Path(__file__).resolve().parent.parent
TOKEN = "test-token-0123456789abcdef"
T0 = datetime(2025, 6, 1, 12, 0, 0, tzinfo=timezone.utc)


class Clock:
    """A settable clock, so validity windows are tested at exact instants."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def server(tmp_path: Path, clock: Clock):
    srv = ReferenceServer(tmp_path / "ref.db", TOKEN, clock=clock).start()
    yield srv
    srv.stop()


@pytest.fixture
def http():
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {TOKEN}"
    yield session
    session.close()


def verify(http: requests.Session, server: ReferenceServer, code: str) -> dict:
    resp = http.post(f"{server.url}/v1/verify", timeout=5,
                     json={"gate": "g1", "code": code, "scanned_at": "2025-06-01T12:00:00Z"})
    assert resp.status_code == 200, resp.text
    return resp.json()


def credentials(http: requests.Session, server: ReferenceServer, since: str | None = None,
                gate: str = "g1", etag: str | None = None) -> requests.Response:
    params = {"gate": gate} | ({"since": since} if since else {})
    headers = {"If-None-Match": etag} if etag else {}
    return http.get(f"{server.url}/v1/credentials", params=params, headers=headers, timeout=5)


def sha(code: str) -> str:
    return hashlib.sha256(code.encode("utf-8")).hexdigest()


# -- auth -----------------------------------------------------------------------------------

@pytest.mark.parametrize("header", [None, f"Bearer {TOKEN}x", "Bearer ", f"Basic {TOKEN}",
                                    TOKEN, f"Bearer {TOKEN[:-1]}"])
@pytest.mark.parametrize("method,path", [("POST", "/v1/verify"), ("GET", "/v1/credentials?gate=g"),
                                         ("POST", "/v1/events"), ("GET", "/nowhere")])
def test_requests_without_the_right_token_are_refused(server, header, method, path):
    server.enrol("ALICE", label="Alice")
    headers = {"Authorization": header} if header else {}
    resp = requests.request(method, server.url + path, headers=headers, timeout=5,
                            json={"gate": "g", "code": "ALICE", "scanned_at": "2025-06-01T12:00:00Z"})
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert "error" in resp.json() and "Alice" not in resp.text


def test_bearer_scheme_is_case_insensitive(server):
    resp = requests.get(f"{server.url}/v1/credentials?gate=g",
                        headers={"Authorization": f"bearer {TOKEN}"}, timeout=5)
    assert resp.status_code == 200


# -- verify ---------------------------------------------------------------------------------

def test_enrolled_code_is_granted_with_label_and_open_time(server, http):
    cred = server.enrol("ALICE-1", label="Alice", open_s=6.5)
    assert verify(http, server, "ALICE-1") == {
        "decision": "grant", "reason": "ok", "label": "Alice", "open_s": 6.5,
        "credential_id": cred.id}
    assert server.hits["/v1/verify"] == 1


def test_unknown_code_is_denied(server, http):
    server.enrol("ALICE-1", label="Alice")
    assert verify(http, server, "ALICE-2") == {"decision": "deny", "reason": "unknown"}


def test_validity_window_is_judged_by_the_server_clock(server, http, clock):
    server.enrol("DAY", label="Day pass", valid_from=T0, valid_until=T0 + timedelta(hours=8))
    clock.now = T0 - timedelta(seconds=1)
    assert verify(http, server, "DAY")["reason"] == "not_yet_valid"
    assert verify(http, server, "DAY")["decision"] == "deny"
    clock.now = T0  # valid_from is inclusive
    assert verify(http, server, "DAY")["decision"] == "grant"
    clock.now = T0 + timedelta(hours=8) - timedelta(microseconds=1)
    assert verify(http, server, "DAY")["decision"] == "grant"
    clock.now = T0 + timedelta(hours=8)  # valid_until is exclusive
    assert verify(http, server, "DAY") == {"decision": "deny", "reason": "expired",
                                           "label": "Day pass",
                                           "credential_id": server.credentials()[0].id}


def test_validity_accepts_offsets_and_stores_utc(server, http, clock):
    cred = server.enrol("TZ", label="tz", valid_until="2025-06-01T14:00:00+02:00")
    assert cred.valid_until == "2025-06-01T12:00:00Z"
    assert verify(http, server, "TZ")["reason"] == "expired"


def test_revoked_code_is_denied_and_re_enrol_restores_it(server, http):
    server.enrol("BOB", label="Bob")
    assert server.revoke("BOB") is True
    assert server.revoke("BOB") is False  # already revoked: nothing changes
    assert server.revoke("NOBODY") is False
    assert verify(http, server, "BOB")["reason"] == "revoked"
    server.enrol("BOB", label="Bob again")
    assert verify(http, server, "BOB")["decision"] == "grant"


@pytest.mark.parametrize("colour,decision,reason", [
    ("green", "grant", "ok"), ("yellow", "staff", "status_yellow"),
    ("red", "deny", "status_red"), ("black", "deny", "status_black")])
def test_status_colour_is_returned_with_its_verdict(server, http, colour, decision, reason):
    server.enrol("CAROL", label="Carol", status=colour, open_s=5)
    answer = verify(http, server, "CAROL")
    assert (answer["decision"], answer["reason"], answer["status"]) == (decision, reason, colour)
    # Only an opening door needs a door time.
    assert ("open_s" in answer) == (decision == "grant")


def test_expired_beats_a_green_status(server, http, clock):
    server.enrol("OLD", label="Old", status="green", valid_until=T0)
    answer = verify(http, server, "OLD")
    assert (answer["decision"], answer["reason"], answer["status"]) == ("deny", "expired", "green")


def test_enrol_rejects_bad_input(server):
    with pytest.raises(ValueError, match="timezone"):
        server.enrol("X", label="x", valid_until="2025-06-01T12:00:00")
    with pytest.raises(ValueError, match="before"):
        server.enrol("X", label="x", valid_from=T0, valid_until=T0)
    with pytest.raises(ValueError, match="status"):
        server.enrol("X", label="x", status="blue")
    with pytest.raises(ValueError, match="64 hexadecimal"):
        server.enrol(code_sha256="not-hex", label="x")
    assert server.credentials() == []


def test_enrol_by_hash_matches_the_code(server, http):
    server.enrol(code_sha256=sha("HASHED").upper(), label="by hash")
    assert verify(http, server, "HASHED")["decision"] == "grant"


def test_raw_codes_never_reach_the_database(server, http, tmp_path):
    payload = "SECRET-PAYLOAD-7f3a9"
    server.enrol(payload, label="secret")
    verify(http, server, payload)
    verify(http, server, payload + "-unknown")
    server.revoke(payload)
    blob = b"".join(p.read_bytes() for p in tmp_path.glob("ref.db*"))
    assert sha(payload).encode() in blob
    assert payload.encode() not in blob


# -- credentials ----------------------------------------------------------------------------

def test_full_list_then_deltas_by_cursor(server, http):
    a = server.enrol("A", label="a", valid_from=T0)
    b = server.enrol("B", label="b")
    first = credentials(http, server)
    assert first.status_code == 200
    page = first.json()
    assert page["full"] is True
    assert page["credentials"] == [
        {"id": a.id, "code_sha256": sha("A"), "label": "a", "valid_from": "2025-06-01T12:00:00Z"},
        {"id": b.id, "code_sha256": sha("B"), "label": "b"}]

    c = server.enrol("C", label="c", valid_until=T0 + timedelta(days=1))
    server.revoke("A")
    delta = credentials(http, server, since=page["cursor"]).json()
    assert delta["full"] is False
    assert delta["cursor"] != page["cursor"]
    assert delta["credentials"] == [
        {"id": c.id, "code_sha256": sha("C"), "label": "c", "valid_until": "2025-06-02T12:00:00Z"},
        {"id": a.id, "code_sha256": sha("A"), "label": "a", "valid_from": "2025-06-01T12:00:00Z",
         "revoked": True}]

    # Up to date: an empty delta with the same cursor.
    again = credentials(http, server, since=delta["cursor"]).json()
    assert again == {"cursor": delta["cursor"], "full": False, "credentials": []}
    # A full list leaves revoked codes out: it replaces the gate's cache.
    full = credentials(http, server).json()
    assert [row["id"] for row in full["credentials"]] == [b.id, c.id]
    assert all("revoked" not in row for row in full["credentials"])


@pytest.mark.parametrize("since", ["garbage", "deadbeef-1", "ffffffff-0", "-1", "x-y"])
def test_unknown_cursor_gets_a_full_list(server, http, since):
    server.enrol("A", label="a")
    page = credentials(http, server, since=since).json()
    assert page["full"] is True and len(page["credentials"]) == 1


def test_cursor_from_the_future_or_another_database_gets_a_full_list(server, http, tmp_path):
    server.enrol("A", label="a")
    epoch, seq = server.cursor().split("-")
    assert credentials(http, server, since=f"{epoch}-{int(seq) + 5}").json()["full"] is True
    other = Store(tmp_path / "other.db")
    other.enrol("Z", label="z")
    assert credentials(http, server, since=other.cursor()).json()["full"] is True
    assert credentials(http, server, since=f"{epoch}-0").json()["full"] is False


def test_compaction_makes_older_cursors_too_old(server, http):
    server.enrol("A", label="a")
    old = credentials(http, server).json()["cursor"]
    server.revoke("A")
    server.enrol("B", label="b")
    assert server.compact() == 1
    page = credentials(http, server, since=old).json()
    assert page["full"] is True
    assert [row["code_sha256"] for row in page["credentials"]] == [sha("B")]
    assert credentials(http, server, since=page["cursor"]).json()["full"] is False


def test_if_none_match_gets_304_until_something_changes(server, http):
    server.enrol("A", label="a")
    first = credentials(http, server)
    etag = first.headers["ETag"]
    assert etag.startswith('"') and etag.endswith('"')
    cursor = first.json()["cursor"]

    unchanged = credentials(http, server, etag=etag)
    assert unchanged.status_code == 304 and unchanged.content == b""
    assert unchanged.headers["ETag"] == etag
    assert credentials(http, server, etag=f'W/{etag}, "other"').status_code == 304
    # The ETag is for this gate and this `since` only.
    assert credentials(http, server, etag=etag, gate="g2").status_code == 200
    assert credentials(http, server, etag=etag, since=cursor).status_code == 200

    server.enrol("B", label="b")
    changed = credentials(http, server, etag=etag)
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    assert len(changed.json()["credentials"]) == 2

    delta = credentials(http, server, since=cursor)
    assert credentials(http, server, since=cursor, etag=delta.headers["ETag"]).status_code == 304
    server.revoke("B")
    assert credentials(http, server, since=cursor, etag=delta.headers["ETag"]).status_code == 200


def test_compaction_changes_the_etag(server, http):
    server.enrol("A", label="a")
    old = credentials(http, server).json()["cursor"]
    server.enrol("B", label="b")
    delta = credentials(http, server, since=old)
    server.compact()
    after = credentials(http, server, since=old, etag=delta.headers["ETag"])
    assert after.status_code == 200 and after.json()["full"] is True


# -- events ---------------------------------------------------------------------------------

def event(event_id: str, **extra) -> dict:
    return {"id": event_id, "at": "2025-06-01T12:00:00.123456Z", "gate": "g1",
            "kind": "decision", "verdict": "grant", "reason": "ok", "source": "server",
            "code_sha256": sha(event_id), "latency_ms": 42.5} | extra


def test_verify_decides_on_the_exact_bytes_of_code_b64(server, http):
    """Two binary payloads that read the same with replacement characters are two codes;
    `code_b64` wins over `code`, and `code` alone still works (v1 gates)."""
    enrolled, other = b"\xffGATE\x01", b"\xfeGATE\x01"
    assert enrolled.decode("utf-8", "replace") == other.decode("utf-8", "replace")
    server.enrol(code_sha256=hashlib.sha256(enrolled).hexdigest(), label="Binary")
    server.enrol("TEXT-1", label="Text")

    def ask(**code) -> dict:
        resp = http.post(f"{server.url}/v1/verify", timeout=5,
                         json={"gate": "g1", "scanned_at": "2025-06-01T12:00:00Z", **code})
        assert resp.status_code == 200, resp.text
        return resp.json()

    b64 = lambda raw: base64.b64encode(raw).decode()  # noqa: E731
    assert ask(code_b64=b64(enrolled))["label"] == "Binary"
    assert ask(code_b64=b64(other))["reason"] == "unknown"
    assert ask(code_b64=b64(other), code="TEXT-1")["reason"] == "unknown"  # code ignored
    assert ask(code_b64=b64(b"TEXT-1"))["label"] == "Text"
    assert ask(code="TEXT-1")["label"] == "Text"


def test_events_are_stored_once_per_id(server, http):
    url = f"{server.url}/v1/events"
    first = http.post(url, json={"gate": "g1", "events": [event("e1"), event("e2")]}, timeout=5)
    assert first.status_code == 200 and first.json() == {
        "stored": 2, "accepted": ["e1", "e2"], "rejected": [], "new": 2, "duplicates": 0}
    # A retry after a lost reply resends e1 and e2; the id decides, not the content.
    again = http.post(url, timeout=5, json={"gate": "g1", "events": [
        event("e1", verdict="deny"), event("e2"), event("e3", kind="door", state="unlocked")]})
    # Every id it now holds is accepted, new or not: the gate marks exactly those.
    assert again.json() == {"stored": 3, "accepted": ["e1", "e2", "e3"], "rejected": [],
                            "new": 1, "duplicates": 2}
    same_batch = http.post(url, json={"gate": "g2", "events": [event("x"), event("x")]}, timeout=5)
    assert same_batch.json() == {"stored": 1, "accepted": ["x"], "rejected": [], "new": 1,
                                 "duplicates": 1}

    stored = server.events()
    assert [e["id"] for e in stored] == ["e1", "e2", "e3", "x"]
    assert stored[0] == event("e1")  # first upload wins, kept exactly as sent
    assert [e["id"] for e in server.events(gate="g2")] == ["x"]


def test_empty_event_batch_is_fine(server, http):
    resp = http.post(f"{server.url}/v1/events", json={"gate": "g1", "events": []}, timeout=5)
    assert resp.json() == {"stored": 0, "accepted": [], "rejected": [], "new": 0,
                           "duplicates": 0}


@pytest.mark.parametrize("path,body,needle", [
    ("/v1/verify", b"{not json", "JSON"),
    ("/v1/verify", b"[1, 2]", "object"),
    ("/v1/verify", b"\xff\xfe", "UTF-8"),
    ("/v1/verify", b'{"gate": "g", "scanned_at": "2025-06-01T12:00:00Z"}', "code"),
    ("/v1/verify", b'{"gate": "g", "code": "", "scanned_at": "2025-06-01T12:00:00Z"}', "code"),
    ("/v1/verify", b'{"gate": "g", "code": 5, "scanned_at": "2025-06-01T12:00:00Z"}', "code"),
    ("/v1/verify", b'{"gate": "g", "code_b64": "***", "scanned_at": "2025-06-01T12:00:00Z"}',
     "code_b64"),
    ("/v1/verify", b'{"gate": "g", "code_b64": 5, "code": "A", "scanned_at": "2025-06-01T12:00:00Z"}',
     "code_b64"),
    ("/v1/verify", b'{"gate": "g", "code": "A", "scanned_at": "2025-06-01T12:00:00"}', "timezone"),
    ("/v1/verify", b'{"code": "A", "scanned_at": "2025-06-01T12:00:00Z"}', "gate"),
    ("/v1/events", b'{"gate": "g", "events": {}}', "events"),
    ("/v1/events", b'{"gate": "g", "events": [{"id": "ok", "at": "2025-06-01T12:00:00Z", '
                   b'"kind": "door"}, {"at": "2025-06-01T12:00:00Z", "kind": "door"}]}',
     "events[1].id"),
    ("/v1/events", b'{"gate": "g", "events": [{"id": "e", "at": "yesterday", "kind": "door"}]}',
     "events[0].at"),
    ("/v1/events", b'{"gate": "g", "events": [{"id": "e", "at": NaN, "kind": "door"}]}', "NaN"),
    ("/v1/events", b'{"events": []}', "gate"),
])
def test_malformed_bodies_get_400_with_a_json_error(server, http, path, body, needle):
    resp = http.post(server.url + path, data=body, timeout=5,
                     headers={"Content-Type": "application/json"})
    assert resp.status_code == 400
    assert needle in resp.json()["error"]
    assert server.events() == []  # a bad batch stores nothing, not even its good events
    # The kept-alive connection still works after the error.
    assert credentials(http, server).status_code == 200


def test_credentials_need_a_gate(server, http):
    resp = http.get(f"{server.url}/v1/credentials", timeout=5)
    assert resp.status_code == 400 and "gate" in resp.json()["error"]


def test_unknown_path_and_wrong_method(server, http):
    assert http.get(f"{server.url}/v2/verify", timeout=5).status_code == 404
    wrong = http.get(f"{server.url}/v1/verify", timeout=5)
    assert wrong.status_code == 405 and wrong.headers["Allow"] == "POST"
    assert http.post(f"{server.url}/v1/credentials?gate=g", json={}, timeout=5).status_code == 405
    assert credentials(http, server).status_code == 200


def test_oversized_body_is_refused(server, http):
    resp = http.post(f"{server.url}/v1/events", data=b" " * (4 * 1024 * 1024 + 1), timeout=5)
    assert resp.status_code == 413


def test_stop_cuts_kept_alive_connections(tmp_path, http):
    srv = ReferenceServer(tmp_path / "ref.db", TOKEN).start()
    assert credentials(http, srv).status_code == 200
    srv.stop()
    srv.stop()  # twice is fine
    with pytest.raises(requests.ConnectionError):
        credentials(http, srv)


def test_ipv6_loopback_url(tmp_path, http):
    try:
        srv = ReferenceServer(tmp_path / "ref.db", TOKEN, host="::1").start()
    except OSError:
        pytest.skip("no IPv6 loopback here")
    try:
        assert srv.url.startswith("http://[::1]:")
        assert credentials(http, srv).status_code == 200
    finally:
        srv.stop()


def test_https_with_a_certificate(tmp_path, http):
    if shutil.which("openssl") is None:
        pytest.skip("openssl command not available to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    with ReferenceServer(tmp_path / "ref.db", TOKEN,
                         ssl_context=server_ssl_context(cert, key)) as srv:
        assert srv.url.startswith("https://127.0.0.1:")
        # verify= per request: Session.verify loses to REQUESTS_CA_BUNDLE when trust_env is on.
        resp = http.get(f"{srv.url}/v1/credentials?gate=g", verify=str(cert), timeout=5)
        assert resp.status_code == 200 and resp.json()["full"] is True
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(f"{srv.url}/v1/credentials?gate=g", timeout=5)  # system CAs only
        with pytest.raises(requests.ConnectionError):
            requests.get(srv.url.replace("https:", "http:") + "/v1/credentials?gate=g",
                         headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)


# -- CLI ------------------------------------------------------------------------------------

def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "gate.refserver", *args], cwd=REPO, env=env,
                          input=stdin, capture_output=True, text=True, timeout=20)


def test_cli_token_creates_a_private_file_once(tmp_path):
    path = tmp_path / "etc" / "token"
    assert cli("token", "--token-file", str(path)).returncode == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    token = path.read_text().strip()
    assert len(token) >= 32
    result = cli("token", "--token-file", str(path))
    assert result.returncode == 0 and path.read_text().strip() == token
    assert token not in result.stdout + result.stderr


@pytest.mark.slow
def test_cli_enrol_revoke_list_events(tmp_path):
    db = str(tmp_path / "ref.db")
    enrolled = cli("enrol", "--db", db, "CLI-CODE-1", "--label", "Dana", "--status", "yellow",
                   "--valid-until", "2099-01-01T00:00:00Z", "--open-s", "3")
    assert enrolled.returncode == 0, enrolled.stderr
    assert "CLI-CODE-1" not in enrolled.stdout
    assert cli("enrol", "--db", db, "-", "--label", "Eve", stdin="FROM-STDIN\n").returncode == 0
    store = Store(db)
    assert store.verify("CLI-CODE-1").decision == "staff"
    assert store.verify("FROM-STDIN").decision == "grant"

    listed = cli("list", "--db", db, "--json")
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [r["label"] for r in rows] == ["Dana", "Eve"]
    assert rows[0]["code_sha256"] == sha("CLI-CODE-1") and "CLI-CODE-1" not in listed.stdout

    assert cli("revoke", "--db", db, "CLI-CODE-1").returncode == 0
    assert store.verify("CLI-CODE-1").reason == "revoked"
    assert cli("revoke", "--db", db, "CLI-CODE-1").returncode == 0  # already revoked
    missing = cli("revoke", "--db", db, "NEVER-ENROLLED")
    assert missing.returncode == 1 and "not enrolled" in missing.stderr
    assert cli("revoke", "--db", db, sha("FROM-STDIN"), "--sha256").returncode == 0
    assert store.verify("FROM-STDIN").reason == "revoked"

    store.ingest_events("lobby", [event("e1"), event("e2", kind="door", state="unlocked")])
    as_json = cli("events", "--db", db, "--json")
    assert [json.loads(line) for line in as_json.stdout.splitlines()] == [
        event("e1"), event("e2", kind="door", state="unlocked")]
    text = cli("events", "--db", db).stdout.splitlines()
    assert len(text) == 2 and "lobby" in text[0] and "verdict=grant" in text[0]
    assert "state=unlocked" in text[1]


def test_main_runs_in_process_for_the_gate_cli(tmp_path, capsys):
    db = str(tmp_path / "ref.db")
    assert main(["enrol", "--db", db, "INPROC", "--label", "Gus"]) == 0
    assert main(["revoke", "--db", db, "OTHER"]) == 1
    assert main(["enrol", "--db", db, "X", "--label", "x", "--status", "green",
                 "--valid-from", "2030-01-01T00:00:00Z", "--valid-until", "2029-01-01T00:00:00Z"]) == 2
    assert "before" in capsys.readouterr().err
    assert Store(db).verify("INPROC").label == "Gus"


def test_cli_refuses_a_time_without_timezone(tmp_path):
    result = cli("enrol", "--db", str(tmp_path / "ref.db"), "X", "--label", "x",
                 "--valid-until", "2099-01-01 00:00")
    assert result.returncode == 2 and "timezone" in result.stderr


@pytest.mark.slow
def test_cli_serve_answers_and_stops_on_sigterm(tmp_path):
    db, token_file = tmp_path / "ref.db", tmp_path / "token"
    assert cli("token", "--token-file", str(token_file)).returncode == 0
    assert cli("enrol", "--db", str(db), "SERVED", "--label", "Fay").returncode == 0
    token = token_file.read_text().strip()
    env = os.environ | {"PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "gate.refserver", "serve", "--db", str(db),
                             "--token-file", str(token_file), "--port", "0"],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("listening on http://127.0.0.1:"), proc.stderr.read()
        url = line.split()[-1]
        resp = requests.post(f"{url}/v1/verify", headers={"Authorization": f"Bearer {token}"},
                             json={"gate": "g", "code": "SERVED",
                                   "scanned_at": "2025-06-01T12:00:00Z"}, timeout=5)
        assert resp.json()["decision"] == "grant"
        assert requests.get(f"{url}/v1/credentials?gate=g", timeout=5).status_code == 401
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        logs = proc.stderr.read()
        assert "SERVED" not in logs and token not in logs
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_cli_serve_without_token_file_fails_clearly(tmp_path):
    result = cli("serve", "--db", str(tmp_path / "ref.db"), "--token-file",
                 str(tmp_path / "missing"), "--port", "0")
    assert result.returncode == 2 and "token file" in result.stderr
