"""The aiming page: frame quality figures and suggestions, the annotated frame (codes painted
over), the token on the LAN, and the live page in Debian's headless Chromium."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

from gate.preview import Preview, PreviewServer
from gate.scan.camera import Frame
from gate.scan.decode import make_decoder
from gate.scan.quality import measure_quality, region_of, suggest
from tests.support.browser import ARGS, CHROMIUM, need_browser
from tests.support.daemon import REPO, gate_config, write_allowlist
from tests.support.qrimages import qr_frame, write_png

ALICE = "GATE-TEST-ALICE-1"


class OneFrame:
    """A frame source that gives the same frame until closed (a camera held still)."""

    def __init__(self, luma: np.ndarray) -> None:
        self.luma, self.seq = luma, 0

    def read(self) -> Frame | None:
        self.seq += 1
        return Frame(luma=self.luma, ts_ns=self.seq, seq=self.seq)

    def close(self) -> None:
        pass


def blurred(luma: np.ndarray, sigma: float) -> np.ndarray:
    return np.asarray(Image.fromarray(luma).filter(ImageFilter.GaussianBlur(sigma)))


def test_quality_blur_estimate_grows_with_the_blur() -> None:
    luma = qr_frame(ALICE, module_px=8)
    (code,) = make_decoder("zxing").decode(luma)
    region = region_of(code.corners, luma.shape)
    estimates = [measure_quality(blurred(luma, s) if s else luma, region).blur_px
                 for s in (0, 1, 2, 3)]
    assert estimates[0] is not None and estimates[0] <= 1.0
    assert all(b is not None for b in estimates)
    assert estimates == sorted(estimates) and estimates[3] > 2.5  # type: ignore[operator]


def test_quality_flat_region_has_no_blur_figure() -> None:
    q = measure_quality(np.full((50, 50), 128, np.uint8))
    assert q.blur_px is None and q.sharpness() is None and q.contrast == 0


def code_box(luma: np.ndarray) -> tuple[int, int, int, int]:
    """Where qr_frame drew its code (everything off the 200 background)."""
    ys, xs = np.nonzero(luma != 200)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def test_suggest_names_the_camera_keys_for_glare_blur_and_small_codes() -> None:
    luma = qr_frame(ALICE, module_px=4)
    box = code_box(luma)
    glare = measure_quality(np.where(luma > 100, 255, 120).astype(np.uint8), box)
    assert any("metering = \"spot\"" in t and "exposure_value" in t for t in suggest(glare, 4.0))
    soft = measure_quality(blurred(luma, 2.5), box)
    assert any("lens_position" in t for t in suggest(soft, 4.0))
    assert any("main_size" in t for t in suggest(soft, 1.5))
    good = qr_frame(ALICE, module_px=6)
    box = code_box(good)
    good[good == 255] = 230  # white paper under good light: bright, not saturated
    assert suggest(measure_quality(good, box), 6.0) == []


def test_preview_snapshot_reports_the_code_and_paints_it_over() -> None:
    luma = qr_frame(ALICE, module_px=5)
    clock = iter([0.0, 0.1, 0.2])
    preview = Preview(OneFrame(luma), make_decoder("zxing"), clock=lambda: next(clock))
    for seq in (1, 2, 3):
        snap = preview.show(luma, seq)
    assert snap.fps == 10.0
    assert len(snap.codes) == 1 and snap.codes[0].px_per_module == 5.0
    assert snap.codes[0].sha256 and ALICE not in repr(snap)
    _, jpeg, _ = preview.latest()
    shown = np.asarray(Image.open(io.BytesIO(jpeg)).convert("L"))
    assert shown.shape == luma.shape
    assert make_decoder("zxing").decode(shown) == [], "the page must not carry a readable pass"


def test_preview_server_needs_the_token_off_loopback() -> None:
    luma = qr_frame(ALICE, module_px=5)
    preview = Preview(OneFrame(luma), make_decoder("zxing"))
    preview.show(luma, 1)
    server = PreviewServer(preview, "0.0.0.0", 0)
    assert server.token
    port = server.httpd.server_address[1]
    import threading
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/stats.json", timeout=5)
        assert refused.value.code == 403
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/frame.jpg?token=wrong", timeout=5)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats.json?token={server.token}",
                                    timeout=5) as r:
            assert b"px_per_module" in r.read()
    finally:
        server.shutdown()
    local = PreviewServer(preview, "127.0.0.1", 0)
    try:
        assert local.token is None
    finally:
        local.shutdown()



@pytest.mark.slow
def test_preview_page_in_chromium_shows_boxes_and_figures(tmp_path: Path) -> None:
    sync_api = need_browser()
    frames = tmp_path / "frames"
    frames.mkdir()
    write_png(frames / "f.png", qr_frame(ALICE, module_px=5))
    config = gate_config(tmp_path, frames, write_allowlist(tmp_path / "allow.csv", []),
                         camera={"loop": True, "fps": 10})
    proc = subprocess.Popen([sys.executable, "-m", "gate", "preview", "--config", str(config),
                             "--listen", "127.0.0.1:0"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, cwd=REPO,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"(http://127\.0\.0\.1:\d+/)", line)
        assert match, line
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
            try:
                page = browser.new_page()
                page.goto(match.group(1))
                page.wait_for_function(
                    "document.getElementById('codes').textContent === '1'", timeout=20000)
                assert page.locator("#ppm").inner_text() == "5.0"
                assert "blur" in page.locator("#sharpness").inner_text()
                assert "of 255" in page.locator("#exposure").inner_text()
                page.wait_for_function(
                    "document.getElementById('frame').naturalWidth === 640", timeout=20000)
                page.wait_for_function(
                    "parseFloat(document.getElementById('fps').textContent) > 0", timeout=20000)
                assert ALICE not in page.content()
            finally:
                browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert proc.returncode in (0, -15)
