"""API v1 through FastAPI's TestClient, on SQLite and PostgreSQL: verify, credentials, events,
authentication, limits and rate limiting."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from gate_server.core.config import RateLimit
from gate_server.db.models import Event, Gate, Pass
from tests.support.server import T0, Server, make_server

AT = "2026-03-01T12:00:00Z"


def verify(client: Any, server: Server, code: str | None = None, gate: str = "gate-1",
           **body: Any) -> Any:
    payload: dict[str, Any] = {"gate": gate, "scanned_at": AT, **body}
    if code is not None:
        payload["code"] = code
    return client.post("/v1/verify", json=payload, headers=server.auth(gate))


# -- verify -----------------------------------------------------------------------------------

def test_gs_verify_grants_a_valid_pass_and_denies_the_rest(server: Server, client: Any) -> None:
    pid, code = server.issue("Ann")
    r = verify(client, server, code)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert r.json() == {"decision": "grant", "reason": "ok", "label": "Ann", "credential_id": pid}
    assert verify(client, server, "NOT-A-PASS").json() == {"decision": "deny", "reason": "unknown"}
    server.revoke(pid)
    assert verify(client, server, code).json()["reason"] == "revoked"


def test_gs_verify_follows_the_validity_window_by_the_server_clock(server: Server,
                                                                   client: Any) -> None:
    _, code = server.issue("Bo", valid_from=T0 + timedelta(hours=1),
                           valid_until=T0 + timedelta(hours=2))
    assert verify(client, server, code).json()["reason"] == "not_yet_valid"
    server.clock.advance(3600)
    assert verify(client, server, code).json()["decision"] == "grant"
    server.clock.advance(3600)
    assert verify(client, server, code).json()["reason"] == "expired"


def test_gs_verify_denies_a_pass_of_another_site(server: Server, client: Any) -> None:
    server.site("annex")
    _, code = server.issue("Cy", site="annex")
    body = verify(client, server, code).json()
    assert (body["decision"], body["reason"]) == ("deny", "wrong_site")
    assert "label" not in body


def test_gs_verify_prefers_code_b64_and_takes_non_utf8_payloads(server: Server,
                                                               client: Any) -> None:
    pid, code = server.issue("Di")
    b64 = base64.b64encode(code.encode()).decode()
    # code_b64 wins over a wrong "code"
    assert verify(client, server, "WRONG", code_b64=b64).json()["credential_id"] == pid
    # binary payloads (not UTF-8) are looked up by the SHA-256 of their bytes
    raw = b"\xff\xfe binary"
    with server.session() as s:
        s.get(Pass, pid).code_sha256 = hashlib.sha256(raw).hexdigest()
    r = verify(client, server, code_b64=base64.b64encode(raw).decode())
    assert r.json()["decision"] == "grant"


def test_gs_verify_rejects_bad_base64_and_missing_fields_naming_them(server: Server,
                                                                    client: Any) -> None:
    r = verify(client, server, code_b64="not base64!!")
    assert r.status_code == 400 and "code_b64" in r.json()["error"]
    r = verify(client, server)
    assert r.status_code == 400 and "code_b64" in r.json()["error"]
    secret_code = "SECRET-CODE-123"
    r = client.post("/v1/verify", headers=server.auth(),
                    json={"gate": "gate-1", "scanned_at": "yesterday", "code": secret_code})
    assert r.status_code == 422 and "scanned_at" in r.json()["error"]
    r = client.post("/v1/verify", headers=server.auth(),
                    json={"gate": "gate-1", "scanned_at": AT, "code": 12345})
    assert r.status_code == 422 and "code" in r.json()["error"]
    assert secret_code not in r.text
    r = client.post("/v1/verify", headers=server.auth(), content=b"{not json")
    assert r.status_code == 400 and "body" in r.json()["error"]


def test_gs_verify_needs_the_gates_own_token(server: Server, client: Any) -> None:
    _, code = server.issue()
    body = {"gate": "gate-1", "scanned_at": AT, "code": code}
    r = client.post("/v1/verify", json=body)
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    assert client.post("/v1/verify", json=body,
                       headers={"Authorization": "Bearer wrong"}).status_code == 401
    # unauthenticated junk is 401 too: nothing is parsed before the token is checked
    assert client.post("/v1/verify", content=b"junk").status_code == 401
    server.gate("gate-2", "hq")
    r = client.post("/v1/verify", json=body, headers=server.auth("gate-2"))
    assert r.status_code == 403 and "gate" in r.json()["error"]


def test_gs_oversized_body_is_refused_with_413(server: Server, client: Any) -> None:
    big = b'{"gate": "gate-1", "pad": "' + b"x" * (server.settings.max_body + 1) + b'"}'
    r = client.post("/v1/verify", content=big, headers=server.auth())
    assert r.status_code == 413


def test_gs_verify_flood_is_rate_limited_with_one_stored_alarm(db_url: str, tmp_path) -> None:
    from fastapi.testclient import TestClient
    srv = make_server(db_url, tmp_path, RateLimit(burst=3, per_s=1, alarm_interval_s=60))
    try:
        srv.site()
        srv.gate()
        with TestClient(srv.app) as client:
            codes = [verify(client, srv, f"GUESS-{i}").status_code for i in range(6)]
            assert codes == [200, 200, 200, 429, 429, 429]
            r = verify(client, srv, "GUESS-x")
            assert int(r.headers["retry-after"]) >= 1
            srv.clock.advance(1.0)  # one token back
            assert verify(client, srv, "GUESS-y").status_code == 200
        with srv.session() as s:
            alarms = s.scalars(select(Event).where(Event.kind == "alarm")).all()
            assert len(alarms) == 1
            assert json.loads(alarms[0].body)["alarm"] == "verify_flood"
            assert alarms[0].gate_id == "gate-1"
    finally:
        srv.app.state.engine.dispose()


def test_gs_gate_last_seen_version_and_cache_age_are_recorded(server: Server,
                                                             client: Any) -> None:
    headers = {**server.auth(), "User-Agent": "gate/1.4.2", "X-Gate-Cache-Age": "120"}
    client.get("/v1/credentials?gate=gate-1", headers=headers)
    with server.session() as s:
        gate = s.get(Gate, "gate-1")
        assert gate.software_version == "1.4.2" and gate.cache_age_s == 120.0
        assert gate.last_seen_at is not None
    junk = {**server.auth(), "User-Agent": "gate/" + "x" * 500, "X-Gate-Cache-Age": "-1"}
    client.get("/v1/credentials?gate=gate-1", headers=junk)
    with server.session() as s:
        assert s.get(Gate, "gate-1").software_version == "1.4.2"


# -- credentials ------------------------------------------------------------------------------

def creds(client: Any, server: Server, since: str | None = None, etag: str | None = None,
          gate: str = "gate-1") -> Any:
    params = {"gate": gate, **({"since": since} if since else {})}
    headers = {**server.auth(gate), **({"If-None-Match": etag} if etag else {})}
    return client.get("/v1/credentials", params=params, headers=headers)


def test_gs_credentials_full_then_delta_then_not_modified(server: Server, client: Any) -> None:
    a, code_a = server.issue("A")
    b, _ = server.issue("B")
    first = creds(client, server)
    body = first.json()
    assert body["full"] is True and [c["id"] for c in body["credentials"]] == [a, b]
    assert body["credentials"][0]["code_sha256"] == hashlib.sha256(code_a.encode()).hexdigest()
    assert creds(client, server, body["cursor"], first.headers["etag"]).status_code == 304
    server.revoke(a)
    c, _ = server.issue("C")
    delta = creds(client, server, body["cursor"], first.headers["etag"])
    d = delta.json()
    assert d["full"] is False
    assert [(x["id"], x.get("revoked", False)) for x in d["credentials"]] == [(a, True), (c, False)]
    assert creds(client, server, d["cursor"], delta.headers["etag"]).status_code == 304
    # a fresh full list leaves revoked passes out
    assert [x["id"] for x in creds(client, server).json()["credentials"]] == [b, c]


def test_gs_credentials_are_only_the_gates_site(server: Server, client: Any) -> None:
    server.site("annex")
    server.gate("annex-1", "annex")
    server.issue("hq person")
    mine, _ = server.issue("annex person", site="annex")
    assert [c["id"] for c in creds(client, server, gate="annex-1").json()["credentials"]] == [mine]
    r = client.get("/v1/credentials", params={"gate": "gate-1"}, headers=server.auth("annex-1"))
    assert r.status_code == 403


def test_gs_credentials_unusable_cursor_gets_the_full_list(server: Server, client: Any) -> None:
    server.issue("A")
    cursor = creds(client, server).json()["cursor"]
    epoch, rev = cursor.split("-")
    for bad in (f"{epoch}-999", f"{'0' * 16}-1", "junk", "1" * 60):
        assert creds(client, server, bad).json()["full"] is True, bad
    assert creds(client, server, "x" * 65).status_code == 422


def test_gs_purged_tombstones_force_a_full_list_for_older_cursors(server: Server,
                                                                 client: Any) -> None:
    from gate_server.db.models import Site
    from gate_server.services import sync
    a, _ = server.issue("A")
    old_cursor = creds(client, server).json()["cursor"]
    server.revoke(a)
    server.clock.advance(31 * 86400)
    with server.session() as s:
        site = s.scalar(select(Site).where(Site.name == "hq"))
        assert sync.purge_tombstones(s, site, server.clock(), 30) == 1
    r = creds(client, server, old_cursor).json()
    assert r["full"] is True and r["credentials"] == []


# -- events -----------------------------------------------------------------------------------

def events(client: Any, server: Server, batch: list[Any], gate: str = "gate-1") -> Any:
    return client.post("/v1/events", json={"gate": gate, "events": batch},
                       headers=server.auth(gate))


def ev(eid: str, **kw: Any) -> dict[str, Any]:
    return {"id": eid, "at": AT, "gate": "gate-1", "kind": "decision", **kw}


def test_gs_events_are_idempotent_and_bad_ones_rejected(server: Server, client: Any) -> None:
    r = events(client, server, [ev("e1", verdict="grant"), ev("e2"), ev("bad", at="never")])
    assert r.status_code == 200
    assert r.json() == {"stored": 2, "accepted": ["e1", "e2"], "rejected": ["bad"]}
    again = events(client, server, [ev("e1"), ev("e3")]).json()
    assert again == {"stored": 2, "accepted": ["e1", "e3"], "rejected": []}
    with server.session() as s:
        rows = s.scalars(select(Event).order_by(Event.n)).all()
        assert [r.event_id for r in rows] == ["e1", "e2", "e3"]
        assert json.loads(rows[0].body)["verdict"] == "grant"  # kept as sent


def test_gs_events_of_another_gate_are_refused(server: Server, client: Any) -> None:
    server.gate("gate-2", "hq")
    events(client, server, [ev("shared")])
    r = events(client, server, [ev("shared"), ev("own")], gate="gate-2")
    assert r.json() == {"stored": 1, "accepted": ["own"], "rejected": ["shared"]}
    r = client.post("/v1/events", json={"gate": "gate-2", "events": []}, headers=server.auth())
    assert r.status_code == 403


def test_gs_events_not_a_batch_is_400_naming_the_field(server: Server, client: Any) -> None:
    for body, field in (({"gate": "gate-1"}, "events"), ({"events": []}, "gate"),
                        ({"gate": "gate-1", "events": ["x"]}, "events[0]"),
                        ({"gate": "gate-1", "events": [{"at": AT}]}, "events[0].id")):
        r = client.post("/v1/events", json=body, headers=server.auth())
        assert r.status_code == 400 and field in r.json()["error"], body
    r = client.post("/v1/events", content=b"[1,2]", headers=server.auth())
    assert r.status_code == 400
