"""End to end in a real browser: Debian's headless Chromium, driven by Playwright, against
`gate-server serve` (a real uvicorn process on SQLite). Reception signs in, issues a visitor
pass through the form and opens its pass page; the QR in the screenshot is decoded and shown
to `gate run` on the files camera, which the server grants; after a revoke in the UI the same
image is denied. GATE_REQUIRE_BROWSER=1 (CI) turns a missing Chromium into a failure.

GATE_SCREENSHOTS_DIR=docs/screenshots also saves the pass list and the holder page there."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from gate_server.core import security
from tests.support.browser import ARGS, CHROMIUM, need_browser

from .pg import free_port

PHONE = {"width": 390, "height": 844}
PASSWORD = "reception desk password"
REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow



def gs(db: str, *args: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "gate_server", "--db", db, *args],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    result: dict[str, Any] = json.loads(out)
    return result


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    """(url, database URL, gate token file) of a running gate-server with site, gate, user."""
    db = f"sqlite:///{tmp_path / 'gs.db'}"
    gs(db, "init")
    gs(db, "site", "add", "hq")
    token = tmp_path / "door-1.token"
    gs(db, "gate", "add", "door-1", "--site", "hq", "--token-file", str(token))
    (tmp_path / "pw").write_text(PASSWORD)
    gs(db, "admin", "add", "desk", "--role", "reception", "--password-file", str(tmp_path / "pw"))
    port = free_port()
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "gate_server", "--db", db, "serve",
                             "--listen", f"127.0.0.1:{port}"], stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"{url}/healthz", timeout=1).ok:
                    break
            except requests.ConnectionError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("gate-server did not start: "
                                   + (tmp_path / "server.log").read_text())
            time.sleep(0.05)
        yield url, db, token
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


def run_gate(tmp_path: Path, url: str, token: Path, image: bytes) -> list[dict[str, Any]]:
    """`gate run` over frames of the screenshot; the decisions it journaled."""
    frames = tmp_path / "frames"
    frames.mkdir(exist_ok=True)
    for i in range(6):
        (frames / f"f{i:02d}.png").write_bytes(image)
    (tmp_path / "allow.csv").write_text("code,label,valid_from,valid_until\n")
    state = tmp_path / "state"
    config = tmp_path / "gate.toml"
    config.write_text(f"""
[gate]
id = "door-1"
state_dir = "{state}"
[camera]
source = "files"
path = "{frames}"
fps = 10
loop = false
[decoder]
backend = "zxing"
[gpio]
pin_factory = "mock"
[door]
relay_pin = 17
open_s = 0.2
[list]
path = "{tmp_path / 'allow.csv'}"
[server]
url = "{url}"
token_file = "{token}"
timeout_s = 2.0
sync_interval_s = 1
""")
    done = subprocess.run([sys.executable, "-m", "gate", "run", "--config", str(config)],
                          capture_output=True, text=True, timeout=120, cwd=REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    with sqlite3.connect(state / "journal.db") as db:
        events = [json.loads(b) for (b,) in db.execute("SELECT body FROM events ORDER BY seq")]
    return [e for e in events if e.get("kind") == "decision"]


def test_gs_browser_issue_scan_grant_revoke_deny(served: tuple[str, str, Path],
                                                  tmp_path: Path) -> None:
    sync_api = need_browser()
    import zxingcpp
    from PIL import Image
    url, db, token = served
    shots = os.environ.get("GATE_SCREENSHOTS_DIR")
    with sync_api.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=str(CHROMIUM), headless=True,
            args=ARGS, viewport=PHONE)
        try:
            page = context.new_page()
            page.goto(f"{url}/admin/login")
            page.get_by_label("Username").fill("desk")
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(f"{url}/admin/passes")
            page.get_by_label("Holder name").fill("Vera Visitor")
            page.get_by_label("Kind").select_option("visitor")
            page.get_by_label("Type").select_option("plain")  # this test follows a plain code
            page.get_by_label("Valid until (UTC, optional)").fill("2099-12-31T18:00")
            page.get_by_role("button", name="Issue pass").click()
            page.wait_for_url(f"{url}/admin/passes/p*")
            pass_id = page.url.rsplit("/", 1)[1]
            assert page.locator("h1").inner_text() == "Vera Visitor"
            detail = page.url
            if shots:
                page.goto(f"{url}/admin/passes")
                page.screenshot(path=f"{shots}/admin-passes-phone.png", full_page=True)
                page.goto(detail)
            page.click("#holder-page")
            page.wait_for_url(f"{url}/p/*")
            png = page.screenshot(full_page=True)
            if shots:
                Path(f"{shots}/holder-page-phone.png").write_bytes(png)
            shot = tmp_path / "holder.png"
            shot.write_bytes(png)
            [read] = zxingcpp.read_barcodes(Image.open(shot))
            secret = security.load_secret(Path(db.removeprefix("sqlite:///") + ".secret"))
            assert read.text == security.pass_code(secret, pass_id)

            granted = run_gate(tmp_path, url, token, png)
            assert [(d["verdict"], d["source"]) for d in granted] == [("grant", "server")]

            page.goto(detail)
            page.get_by_role("button", name="Revoke this pass").click()
            page.wait_for_url(detail)
            assert page.locator("#state").inner_text() == "revoked"
        finally:
            context.close()
    denied = run_gate(tmp_path, url, token, png)[len(granted):]
    assert [(d["verdict"], d["reason"]) for d in denied] == [("deny", "revoked")]
