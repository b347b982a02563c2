"""Admin pages through TestClient on SQLite and PostgreSQL: sessions, CSRF, roles, throttling,
passes (issue, show, print, revoke), gates, sites, users, events, and escaping."""

from __future__ import annotations

import re
import warnings
from typing import Any

import pytest
from sqlalchemy import select

from gate_server.core import security
from gate_server.db.models import Admin, Event, Gate, Pass, WebSession
from gate_server.services import admin
from gate_server.web.routes import qr_svg
from tests.support.server import T0, Server

with warnings.catch_warnings():  # Starlette 1.10 wants httpx2; httpx works (see conftest)
    warnings.simplefilter("ignore", DeprecationWarning)
    from fastapi.testclient import TestClient

PASSWORD = "correct horse battery"
HOSTILE = '<script>alert("x")</script>&<b>'
ESCAPED = "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&amp;&lt;b&gt;"


def add_user(server: Server, name: str, role: str) -> None:
    with server.session() as s:
        admin.add_admin(s, security.password_hasher(cheap=True), name, PASSWORD,
                        server.clock(), role)


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF field in the page"
    return match.group(1)


def login(c: TestClient, user: str, password: str = PASSWORD) -> Any:
    token = csrf_of(c.get("/admin/login").text)
    return c.post("/admin/login", data={"csrf": token, "username": user, "password": password},
                  follow_redirects=False)


def signed_in(server: Server, role: str = "admin", name: str | None = None,
              base_url: str = "http://testserver") -> TestClient:
    name = name or role
    add_user(server, name, role)
    c = TestClient(server.app, base_url=base_url)
    r = login(c, name)
    assert r.status_code == 303 and r.headers["location"] == "/admin/passes", r.text
    return c


def issue(c: TestClient, **fields: str) -> Any:
    csrf = csrf_of(c.get("/admin/passes").text)
    data = {"csrf": csrf, "holder": "Vera Visitor", "kind": "visitor", "site": "hq",
            "valid_from": "", "valid_until": "2026-03-02T18:00", **fields}
    return c.post("/admin/passes", data=data, follow_redirects=False)


def pass_rows(server: Server) -> list[Pass]:
    with server.session() as s:
        return list(s.scalars(select(Pass)))


def test_gs_web_session_cookie_is_httponly_lax_and_secure_over_tls(server: Server) -> None:
    add_user(server, "ann", "admin")
    for base, secure in (("http://testserver", False), ("https://testserver", True)):
        c = TestClient(server.app, base_url=base)
        cookie = login(c, "ann").headers["set-cookie"]
        assert cookie.startswith("gs_session=") and "HttpOnly" in cookie
        assert "SameSite=lax" in cookie and ("Secure" in cookie) is secure
        sid = cookie.split(";")[0].split("=", 1)[1]
        with server.session() as s:  # the database holds only the cookie's hash
            stored = [w.id_sha256 for w in s.scalars(select(WebSession))]
        assert security.sha256_hex(sid.encode()) in stored and sid not in stored


def test_gs_web_pages_need_a_session_and_logout_ends_it(server: Server) -> None:
    anon = TestClient(server.app)
    for path in ("/admin", "/admin/passes", "/admin/events", "/admin/events/rows",
                 "/admin/gates", "/admin/passes/p0/print"):
        r = anon.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/admin/login", path
    c = signed_in(server)
    sid = c.cookies["gs_session"]
    page = c.get("/admin/passes")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    r = c.post("/admin/logout", data={"csrf": csrf_of(page.text)}, follow_redirects=False)
    assert r.status_code == 303
    replay = TestClient(server.app, cookies={"gs_session": sid})  # the old cookie is dead
    assert replay.get("/admin/passes", follow_redirects=False).status_code == 303


def test_gs_web_session_expires_after_twelve_hours(server: Server) -> None:
    c = signed_in(server)
    server.clock.advance(11 * 3600)
    assert c.get("/admin/passes", follow_redirects=False).status_code == 200
    server.clock.advance(3600)
    assert c.get("/admin/passes", follow_redirects=False).status_code == 303


def test_gs_web_post_without_or_with_a_wrong_csrf_token_is_refused(server: Server) -> None:
    pid, _ = server.issue("Kept")
    c = signed_in(server)
    good = csrf_of(c.get("/admin/passes").text)
    forms = {"/admin/passes": {"holder": "X", "kind": "visitor", "site": "hq"},
             f"/admin/passes/{pid}/revoke": {}, "/admin/gates": {"id": "g9", "site": "hq"},
             "/admin/sites": {"name": "annex"}, "/admin/logout": {},
             "/admin/users": {"username": "eve", "password": "x" * 12, "role": "admin"}}
    for path, data in forms.items():
        for token in (None, "wrong", good[:-1]):
            body = dict(data, **({"csrf": token} if token is not None else {}))
            r = c.post(path, data=body, follow_redirects=False)
            assert r.status_code == 403, (path, token)
    with server.session() as s:
        assert [p.holder for p in s.scalars(select(Pass))] == ["Kept"]
        assert not s.get(Pass, pid).revoked and s.get(Gate, "g9") is None
        assert s.get(Admin, "eve") is None
    assert c.get("/admin/passes", follow_redirects=False).status_code == 200  # still signed in
    # The login form's token is tied to the browser's login cookie too.
    add_user(server, "bob", "reception")
    fresh = TestClient(server.app)
    r = fresh.post("/admin/login", data={"csrf": "guess", "username": "bob",
                                         "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 403 and "gs_session" not in r.cookies


def test_gs_web_reception_issues_and_revokes_but_manages_nothing(server: Server) -> None:
    c = signed_in(server, "reception")
    page = c.get("/admin/passes").text
    assert 'href="/admin/gates"' not in page and 'href="/admin/events"' in page
    csrf = csrf_of(page)
    for path in ("/admin/gates", "/admin/sites", "/admin/users"):
        assert c.get(path).status_code == 403, path
        r = c.post(path, data={"csrf": csrf, "id": "g2", "site": "hq", "name": "annex",
                               "username": "eve", "password": "x" * 12, "role": "admin"})
        assert r.status_code == 403, path
    with server.session() as s:
        assert s.get(Gate, "g2") is None and s.get(Admin, "eve") is None
    r = issue(c)
    assert r.status_code == 303
    pid = r.headers["location"].rsplit("/", 1)[1]
    r = c.post(f"/admin/passes/{pid}/revoke", data={"csrf": csrf})
    assert r.status_code == 200 and 'id="state">revoked' in r.text
    assert c.get("/admin/events").status_code == 200


def test_gs_web_issue_show_print_and_revoke_a_pass(server: Server, client: Any) -> None:
    c = signed_in(server)
    r = issue(c, kind="staff", type="plain")
    location = r.headers["location"]
    [row] = pass_rows(server)
    assert location == f"/admin/passes/{row.id}" and row.kind == "staff"
    assert row.valid_until is not None and row.valid_until.hour == 18  # the form says UTC
    code = security.pass_code(server.secret, row.id)
    assert code not in location
    detail = c.get(location).text
    assert str(qr_svg(code)) in detail and 'id="state">valid' in detail
    page_url = f"/p/{security.page_token(server.secret, row.id)}"
    assert f'href="{page_url}"' in detail
    assert str(qr_svg(code)) in c.get(f"{location}/print").text
    assert "Vera Visitor" in c.get("/admin/passes").text
    verify = {"gate": "gate-1", "scanned_at": "2026-03-01T12:00:00Z", "code": code}
    assert client.post("/v1/verify", json=verify, headers=server.auth()).json()["decision"] \
        == "grant"
    r = c.post(f"{location}/revoke", data={"csrf": csrf_of(detail)})
    assert 'id="state">revoked' in r.text and "<svg" not in r.text
    assert "<svg" not in c.get(f"{location}/print").text
    assert client.post("/v1/verify", json=verify, headers=server.auth()).json()["reason"] \
        == "revoked"
    assert c.get("/admin/passes/nope").status_code == 404


def test_gs_web_issue_refusals_name_the_form_field(server: Server) -> None:
    c = signed_in(server)
    cases = [({"holder": "  "}, "Holder:"), ({"kind": "vip"}, "Kind:"),
             ({"site": "nowhere"}, "Site:"), ({"valid_until": "tomorrow"}, "Valid until:"),
             ({"valid_from": "2026-03-05T10:00", "valid_until": "2026-03-04T10:00"},
              "Valid until:")]
    for fields, message in cases:
        r = issue(c, **fields)
        assert r.status_code == 400 and f'id="error">{message}' in r.text, fields
    assert pass_rows(server) == []


def test_gs_web_holder_label_with_html_is_shown_as_text(server: Server) -> None:
    c = signed_in(server)
    location = issue(c, holder=HOSTILE).headers["location"]
    with server.session() as s:
        s.add(Event(event_id="e1", gate_id="gate-1", at="2026-03-01T12:00:00Z",
                    kind="decision", received_at=T0,
                    body='{"verdict": "grant", "label": "' + HOSTILE.replace('"', '\\"') + '"}'))
    for path in ("/admin/passes", location, f"{location}/print", "/admin/events",
                 "/admin/events/rows"):
        text = c.get(path).text
        assert ESCAPED in text and HOSTILE not in text, path


def test_gs_web_login_is_throttled_per_user(server: Server) -> None:
    add_user(server, "ann", "admin")
    c = TestClient(server.app)
    for _ in range(5):
        assert login(c, "ann", "wrong password").status_code == 401
    r = login(c, "ann")  # the right password, too soon
    assert r.status_code == 429 and "gs_session" not in r.cookies
    server.clock.advance(31)
    assert login(c, "ann").status_code == 303
    assert login(c, "nobody", "x").status_code in (401, 429)


def test_gs_web_admin_registers_a_gate_and_its_token_is_shown_once(server: Server,
                                                                   client: Any) -> None:
    c = signed_in(server)
    r = c.post("/admin/gates", data={"csrf": csrf_of(c.get("/admin/gates").text),
                                     "id": "door-2", "site": "hq", "direction": "in"})
    assert r.status_code == 201 and r.headers["cache-control"] == "no-store"
    token = re.search(r'id="token" class="token" value="([^"]+)"', r.text).group(1)  # type: ignore[union-attr]
    assert token not in c.get("/admin/gates").text
    with server.session() as s:
        assert s.get(Gate, "door-2").token_sha256 == security.token_hash(token)
    health = client.get("/v1/credentials", headers={"Authorization": f"Bearer {token}"})
    assert health.status_code == 200
    again = c.post("/admin/gates", data={"csrf": csrf_of(r.text), "id": "door-2", "site": "hq"})
    assert again.status_code == 400 and "Gate id:" in again.text


def test_gs_web_gates_page_shows_last_seen_cache_age_version_online(server: Server,
                                                                   client: Any) -> None:
    c = signed_in(server)
    assert "never" in c.get("/admin/gates").text
    headers = {**server.auth(), "User-Agent": "gate/1.4.2 python-requests",
               "X-Gate-Cache-Age": "42"}
    assert client.get("/v1/credentials", headers=headers).status_code == 200
    row = re.search(r"<tr><td data-label=\"Gate\">gate-1</td>.*?</tr>", c.get("/admin/gates").text).group(0)  # type: ignore[union-attr]
    assert "online" in row and "1.4.2" in row and "42 s" in row and "2026-03-01 12:00" in row
    server.clock.advance(181)
    row = re.search(r"<tr><td data-label=\"Gate\">gate-1</td>.*?</tr>", c.get("/admin/gates").text).group(0)  # type: ignore[union-attr]
    assert ">offline<" in row


def test_gs_web_admin_adds_a_site_and_a_reception_user_who_can_sign_in(server: Server) -> None:
    c = signed_in(server)
    csrf = csrf_of(c.get("/admin/sites").text)
    assert c.post("/admin/sites", data={"csrf": csrf, "name": "annex",
                                        "timezone": "Europe/Oslo"}).status_code == 200
    assert "Europe/Oslo" in c.get("/admin/sites").text
    r = c.post("/admin/sites", data={"csrf": csrf, "name": "x", "timezone": "Mars/Base"})
    assert r.status_code == 400 and "Time zone:" in r.text
    r = c.post("/admin/users", data={"csrf": csrf, "username": "desk", "password": "short",
                                     "role": "reception"})
    assert r.status_code == 400 and "Password:" in r.text
    r = c.post("/admin/users", data={"csrf": csrf, "username": "desk", "password": PASSWORD,
                                     "role": "root"})
    assert r.status_code == 400 and "Role:" in r.text
    c.post("/admin/users", data={"csrf": csrf, "username": "desk", "password": PASSWORD,
                                 "role": "reception"})
    desk = TestClient(server.app)
    assert login(desk, "desk").status_code == 303
    assert desk.get("/admin/sites").status_code == 403


def test_gs_web_events_page_lists_events_and_survives_junk_bodies(server: Server,
                                                                 client: Any) -> None:
    batch = {"gate": "gate-1", "events": [
        {"id": "ev-1", "at": "2026-03-01T12:00:01Z", "kind": "decision", "verdict": "deny",
         "reason": "revoked", "label": "Ann", "source": "server"}]}
    assert client.post("/v1/events", json=batch, headers=server.auth()).status_code == 200
    with server.session() as s:
        for i, body in enumerate(("not json", "[1, 2]", '{"verdict": {"x": 1}}')):
            s.add(Event(event_id=f"junk-{i}", gate_id="gate-1", at="t", kind="decision",
                        body=body, received_at=T0))
    c = signed_in(server, "reception")
    page = c.get("/admin/events")
    assert page.status_code == 200 and 'src="/static/admin.js"' in page.text
    rows = c.get("/admin/events/rows").text
    assert rows.count("<tr>") == 4 and "revoked" in rows and "Ann" in rows
    assert c.get("/static/admin.js").status_code == 200


@pytest.mark.parametrize("role", ["admin", "reception"])
def test_gs_web_cli_admin_add_takes_a_role(role: str, db_url: str, tmp_path: Any,
                                           capsys: Any) -> None:
    from gate_server.cli import main
    secret, pw = tmp_path / "secret", tmp_path / "pw"
    pw.write_text(PASSWORD)
    base = ["--db", db_url, "--secret-file", str(secret)]
    assert main([*base, "init"]) == 0
    extra = [] if role == "admin" else ["--role", role]  # admin is the default
    assert main([*base, "admin", "add", "u1", "--password-file", str(pw), *extra]) == 0
    from sqlalchemy import create_engine
    engine = create_engine(db_url)
    with engine.connect() as conn:
        assert conn.execute(select(Admin.role)).scalar_one() == role
    engine.dispose()
    with pytest.raises(SystemExit) as exit_info:
        main([*base, "admin", "add", "u2", "--password-file", str(pw), "--role", "root"])
    assert exit_info.value.code == 2


def test_gs_web_issues_signed_by_default_and_rotating_on_request(server: Server,
                                                                 client: Any) -> None:
    from gate_server.services import signing
    c = signed_in(server)
    location = issue(c).headers["location"]
    rot = issue(c, rotating="1").headers["location"]
    rows = {r.id: r for r in pass_rows(server)}
    signed, rotating = rows[location.rsplit("/", 1)[1]], rows[rot.rsplit("/", 1)[1]]
    assert signed.signed and not signed.rotating and rotating.signed and rotating.rotating
    with server.session() as s:
        text = signing.static_text(s, server.secret, signed)
    assert str(qr_svg(text)) in c.get(location).text          # the signed pass's own QR
    assert "<svg" not in c.get(rot).text                      # rotating: holder page only
    verify = {"gate": "gate-1", "scanned_at": "2026-03-01T12:00:00Z", "code": text}
    assert client.post("/v1/verify", json=verify, headers=server.auth()).json()["reason"] == "ok"
