"""The holder's pass page /p/<token>: the QR while the pass is usable, plain words otherwise."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from gate_server.core import security
from gate_server.web.routes import qr_svg
from tests.support.server import T0, Server


def page(client: Any, server: Server, pass_id: str) -> Any:
    return client.get(f"/p/{security.page_token(server.secret, pass_id)}")


def test_gs_page_shows_the_pass_qr_and_its_validity(server: Server, client: Any) -> None:
    pid, code = server.issue("Ann <b>Example</b>", valid_until=T0 + timedelta(days=2))
    r = page(client, server, pid)
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    assert str(qr_svg(code)) in r.text           # exactly the pass code's QR, as inline SVG
    assert "<svg" in r.text and code not in r.text.replace(str(qr_svg(code)), "")
    assert "Ann &lt;b&gt;Example&lt;/b&gt;" in r.text   # the holder is escaped
    assert "hq" in r.text and "03 March 2026, 12:00 UTC" in r.text


def test_gs_page_says_revoked_or_expired_without_a_qr(server: Server, client: Any) -> None:
    revoked, _ = server.issue("R")
    server.revoke(revoked)
    r = page(client, server, revoked)
    assert "revoked" in r.text and "<svg" not in r.text
    expired, _ = server.issue("E", valid_until=T0 + timedelta(hours=1))
    server.clock.advance(7200)
    r = page(client, server, expired)
    assert "expired" in r.text and "<svg" not in r.text


def test_gs_page_unknown_or_junk_token_is_404(server: Server, client: Any) -> None:
    pid, code = server.issue("A")
    for token in ("a" * 32, code, code.lower(), pid, "x", "%00" * 20):
        r = client.get(f"/p/{token}")
        assert r.status_code == 404 and r.headers["cache-control"] == "no-store", token
