"""Signed passes through gate-server: real keys and signatures via the CLI and the API,
keys rotation and export verified offline with the gate's own PassVerifier, rotating codes,
revocations by cursor, and /v1/verify answering with the gate's reasons (SQLite and
PostgreSQL)."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient

from gate.passes import KeyRing, RevocationStore, load_keys_file, parse_keys, parse_text
from gate.verify.passes import PassPolicy, PassVerifier
from gate_server.core.config import load_settings
from gate_server.main import create_app
from tests.support.server import Server

from .test_gs_cli import dump, run


def b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def offline(tmp_path: Path, ring: KeyRing, rotation: dict[str, bytes],
            site: str = "hq") -> PassVerifier:
    store = RevocationStore(tmp_path / f"rev-{len(ring.keys)}.db")
    return PassVerifier(lambda: ring, lambda: rotation, store,
                        PassPolicy(site, ZoneInfo("UTC"), max_key_age_s=0))


def keys_doc(client: Any, token: str) -> dict[str, Any]:
    r = client.get("/v1/keys", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    doc: dict[str, Any] = r.json()
    return doc


def test_gs_signed_cli_rotate_export_and_offline_verify(db_url: str, tmp_path: Path,
                                                        capsys: Any) -> None:
    secret = tmp_path / "secret"
    for args in (("init",), ("site", "add", "hq"),
                 ("gate", "add", "gate-1", "--site", "hq", "--token-file", str(tmp_path / "t"))):
        assert run(capsys, db_url, secret, *args)[0] == 0
    token = (tmp_path / "t").read_text().strip()
    old_txt = tmp_path / "old.txt"
    rc, old, _ = run(capsys, db_url, secret, "pass", "issue", "--site", "hq", "--holder", "Ann",
                     "--kind", "staff", "--qr-text", str(old_txt))
    assert rc == 0 and old["type"] == "signed" and old["page_url"].startswith("/p/")
    old_text = old_txt.read_text()
    assert old_text.startswith("GP1:") and len(old_text) <= 180
    assert parse_text(old_text).envelope.kid.hex() == old["kid"]
    assert old_text not in dump(db_url)              # re-signed on demand, never stored

    assert run(capsys, db_url, secret, "keys", "export", "--out", str(tmp_path / "k1.json"))[0] == 0
    rc, rotated, _ = run(capsys, db_url, secret, "keys", "rotate")
    assert rc == 0 and rotated["retired"] == [old["kid"]] and rotated["kid"] != old["kid"]
    new_txt = tmp_path / "new.txt"
    rc, new, _ = run(capsys, db_url, secret, "pass", "issue", "--site", "hq", "--holder", "Bo",
                     "--qr-text", str(new_txt))
    assert new["kid"] == rotated["kid"]
    assert parse_text(new_txt.read_text()).envelope.kid.hex() == rotated["kid"]
    assert run(capsys, db_url, secret, "keys", "export", "--out", str(tmp_path / "k2.json"))[0] == 0

    before, after = load_keys_file(tmp_path / "k1.json"), load_keys_file(tmp_path / "k2.json")
    assert [k.kid.hex() for k in after.keys] == [old["kid"], rotated["kid"]]
    now = datetime.now(timezone.utc).timestamp()
    v_after = offline(tmp_path, after, {})
    assert v_after.decide(old_text, now).reason == "ok"          # old key still verifies
    d = v_after.decide(new_txt.read_text(), now)
    assert (d.verdict, d.pass_id) == ("grant", new["id"])        # journaled by id alone
    assert offline(tmp_path, before, {}).decide(new_txt.read_text(), now).reason == "unknown_key"

    # the same key list over the API, which a gate loads with the same parser
    app = create_app(load_settings(db_url, str(secret)))
    try:
        with TestClient(app) as client:
            doc = keys_doc(client, token)
    finally:
        app.state.engine.dispose()
    assert parse_keys(json.dumps({"keys": doc["keys"]})) == KeyRing(after.keys)
    assert list(doc["rotation_keys"]) == ["hq"] and len(b64url(doc["rotation_keys"]["hq"])) == 32

    rc, plain, _ = run(capsys, db_url, secret, "pass", "issue", "--plain", "--site", "hq",
                       "--holder", "Cy", "--qr-text", str(tmp_path / "p.txt"))
    assert plain["type"] == "plain" and not (tmp_path / "p.txt").read_text().startswith("GP1:")


def test_gs_signed_rotating_show_at_changes_every_30s(db_url: str, tmp_path: Path,
                                                      capsys: Any) -> None:
    secret = tmp_path / "secret"
    for args in (("init",), ("site", "add", "hq"),
                 ("gate", "add", "gate-1", "--site", "hq", "--token-file", str(tmp_path / "t"))):
        assert run(capsys, db_url, secret, *args)[0] == 0
    rc, issued, _ = run(capsys, db_url, secret, "pass", "issue", "--site", "hq", "--holder",
                        "Ann", "--rotating", "--qr-text", str(tmp_path / "now.txt"))
    assert rc == 0 and issued["rotating"] is True
    app = create_app(load_settings(db_url, str(secret)))
    try:
        with TestClient(app) as client:
            doc = keys_doc(client, (tmp_path / "t").read_text().strip())
    finally:
        app.state.engine.dispose()
    ring = parse_keys(json.dumps({"keys": doc["keys"]}))
    v = offline(tmp_path, ring, {"hq": b64url(doc["rotation_keys"]["hq"])})
    t1 = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(hours=1)
    shown = []
    for at in (t1, t1 + timedelta(seconds=30)):
        out = tmp_path / "shown.txt"
        iso = at.isoformat().replace("+00:00", "Z")
        assert run(capsys, db_url, secret, "pass", "show", issued["id"], "--at", iso,
                   "--qr-text", str(out))[0] == 0
        text = out.read_text()
        shown.append(text)
        assert len(text) <= 180 and text[-9] == "*"
        assert v.decide(text, at.timestamp()).reason == "ok"
        assert v.decide(text, at.timestamp() + 120).reason == "stale_code"
    assert shown[0][:-8] == shown[1][:-8] and shown[0][-8:] != shown[1][-8:]
    assert v.decide(shown[0][:-9], t1.timestamp()).reason == "stale_code"  # no suffix


def test_gs_signed_keys_endpoint_etag_and_only_its_own_site_key(server: Server,
                                                                client: Any) -> None:
    server.site("annex")
    server.gate("gate-2", "annex")
    server.issue("Ann", signed=True)                  # the first key is made on first use
    r = client.get("/v1/keys", headers=server.auth())
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    body, tag = r.json(), r.headers["etag"]
    assert set(body) == {"keys", "rotation_keys"} and list(body["rotation_keys"]) == ["hq"]
    other = client.get("/v1/keys", headers=server.auth("gate-2")).json()
    assert list(other["rotation_keys"]) == ["annex"]
    assert other["rotation_keys"]["annex"] != body["rotation_keys"]["hq"]
    assert client.get("/v1/keys", headers={**server.auth(), "If-None-Match": tag}).status_code == 304
    from gate_server.services import signing
    with server.session() as s:
        signing.rotate(s, server.secret, server.clock())
    r = client.get("/v1/keys", headers={**server.auth(), "If-None-Match": tag})
    assert r.status_code == 200 and len(r.json()["keys"]) == 2 and r.headers["etag"] != tag
    assert client.get("/v1/keys").status_code == 401
    assert client.get("/v1/revocations").status_code == 401


def test_gs_signed_revocations_delta_by_cursor(server: Server, client: Any) -> None:
    a, _ = server.issue("A", signed=True)
    b, _ = server.issue("B", signed=True)
    plain, _ = server.issue("P")
    first = client.get("/v1/revocations", headers=server.auth()).json()
    assert first["full"] is True and first["revoked"] == [] and first["unrevoked"] == []
    server.revoke(a)
    server.revoke(plain)                              # plain codes travel in /v1/credentials
    delta = client.get("/v1/revocations", params={"since": first["cursor"]},
                       headers=server.auth()).json()
    assert (delta["full"], delta["revoked"], delta["unrevoked"]) == (False, [a], [])
    server.issue("C", signed=True)                    # a change, but not a revocation
    quiet = client.get("/v1/revocations", params={"since": delta["cursor"]},
                       headers=server.auth()).json()
    assert (quiet["full"], quiet["revoked"]) == (False, [])
    server.revoke(b)
    full = client.get("/v1/revocations", params={"since": "junk-1"}, headers=server.auth()).json()
    assert full["full"] is True and sorted(full["revoked"]) == sorted([a, b])
    store = RevocationStore(Path(server.settings.secret_file).parent / "gate-rev.db")
    store.replace((bytes.fromhex(i) for i in full["revoked"]), full["cursor"])
    assert store.revoked(bytes.fromhex(b)) and store.cursor == full["cursor"]
    store.close()


def test_gs_signed_verify_online_same_reasons_and_revoked_a_second_later(
        server: Server, client: Any) -> None:
    from gate_server.services import passes, signing
    with server.session() as s:
        row = passes.issue(s, server.secret, passes.IssueSpec("hq", "Ann", signed=True,
                                                              rotating=True), server.clock())
        pid = row.id
        now = server.clock().timestamp()
        shown = signing.shown_text(s, server.secret, row, now)

    def verify(code: str) -> dict[str, Any]:
        r = client.post("/v1/verify", headers=server.auth(),
                        json={"gate": "gate-1", "code": code, "scanned_at": "2026-03-01T12:00:00Z"})
        assert r.status_code == 200, r.text
        out: dict[str, Any] = r.json()
        return out

    ok = verify(shown)
    assert (ok["decision"], ok["reason"], ok["credential_id"], ok["label"]) == (
        "grant", "ok", pid, "Ann")
    assert verify(shown[:-9])["reason"] == "stale_code"
    flipped = shown[:20] + ("A" if shown[20] != "A" else "B") + shown[21:]
    assert verify(flipped)["decision"] == "deny"
    assert verify("GP1:" + "0" * 40)["reason"] == "bad_format"
    server.revoke(pid)
    server.clock.advance(1)
    with server.session() as s:
        late = signing.shown_text(s, server.secret, passes.get(s, pid),
                                  server.clock().timestamp())
    assert verify(late) == {"decision": "deny", "reason": "revoked", "label": "Ann",
                            "credential_id": pid}
    server.site("annex")
    server.gate("gate-2", "annex")
    r = client.post("/v1/verify", headers=server.auth("gate-2"),
                    json={"gate": "gate-2", "code": late, "scanned_at": "2026-03-01T12:00:00Z"})
    assert r.json()["reason"] == "wrong_site"
