"""The holder page of a rotating pass in headless Chromium: the page computes the code
(WebCrypto) and draws the QR itself; the screenshot decodes with zxing-cpp and verifies
with the gate's PassVerifier at the page's time, and is a stale_code two minutes later."""

from __future__ import annotations

import io
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from gate.passes import RevocationStore
from gate.verify.passes import PassPolicy, PassVerifier
from gate_server.core import security
from gate_server.db.models import Site
from gate_server.services import passes, signing
from tests.support.browser import ARGS, CHROMIUM, need_browser
from tests.support.server import T0, Running


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_gs_page_rotating_code_decodes_and_verifies_then_goes_stale(
        live: Running, tmp_path: Path) -> None:
    need_browser()
    import zxingcpp
    from PIL import Image
    from playwright.sync_api import sync_playwright

    server = live.server
    with server.session() as s:
        row = passes.issue(s, server.secret, passes.IssueSpec("hq", "Ann", signed=True,
                                                              rotating=True), server.clock())
        pid = row.id
        static = signing.static_text(s, server.secret, row)
        ring = signing.public_keys(s)
        site = s.get(Site, row.site_id)
        assert site is not None
        site_key = signing.site_rotation_key(server.secret, site)
    url = f"{live.url}/p/{security.page_token(server.secret, pid)}"
    at = T0.timestamp() + 45.0                 # mid-step, as a holder would open it
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page()
            page.clock.set_fixed_time(at)
            page.goto(url)
            page.wait_for_selector("#qr svg", timeout=10_000)
            shown_code = page.get_attribute("#qr", "data-shown")
            html = page.content()
            png = page.locator("#qr").screenshot()
        finally:
            browser.close()
    assert site_key.hex() not in html and static + "*" not in html   # no site key, no code
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    assert len(found) == 1
    text = found[0].text
    assert text.startswith(static + "*") and text.endswith(shown_code or "missing")
    verifier = PassVerifier(lambda: ring, lambda: {"hq": site_key},
                            RevocationStore(tmp_path / "rev.db"),
                            PassPolicy("hq", ZoneInfo("UTC"), max_key_age_s=0))
    now = verifier.decide(text, at)
    assert (now.verdict, now.reason) == ("grant", "ok")
    assert verifier.decide(text, at + 120).reason == "stale_code"
    # the page's TOTP is Python's: the same text the server shows at that moment
    with server.session() as s:
        assert text == signing.shown_text(s, server.secret, passes.get(s, pid), at)
