"""`gate preview`: the technician's aiming page. Live frames from the gate's camera, each code
boxed, with pixels per module, sharpness, exposure and frames per second, served on loopback
(or on the LAN behind a token printed at start). Stop the daemon first: it holds the camera.

Codes the gate reads are painted over before a frame leaves the process (as test-camera does
in its snapshot): the page shows aim, focus and light, never a pass someone could copy.
"""

from __future__ import annotations

import hmac
import io
import ipaddress
import json
import logging
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np

from .config import Config
from .errors import GateError
from .scan.camera import FrameSource
from .scan.decode import Decoder
from .scan.quality import measure_quality, region_of, suggest

log = logging.getLogger(__name__)

JPEG_QUALITY = 80
FPS_WINDOW = 30  # frames the shown rate is averaged over


@dataclass
class CodeBox:
    corners: list[tuple[int, int]]
    px_per_module: float | None
    blur_px: float | None
    sha256: str  # first 12 hex digits: enough to tell two codes apart, not to forge one


@dataclass
class Snapshot:
    """What the page shows for one frame."""

    seq: int = 0
    size: tuple[int, int] = (0, 0)
    fps: float = 0.0
    codes: list[CodeBox] = field(default_factory=list)
    mean: float = 0.0
    clipped: float = 0.0
    contrast: float = 0.0
    sharpness: float | None = None
    tips: list[str] = field(default_factory=list)


class Preview:
    """Reads frames on its own thread, annotates the latest; the HTTP handlers read it."""

    def __init__(self, source: FrameSource, decoder: Decoder,
                 versions: Callable[[np.ndarray], dict[str, int]] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.source = source
        self.decoder = decoder
        self.versions = versions or (lambda _luma: {})
        self.clock = clock
        self.snapshot = Snapshot()
        self.jpeg = b""
        self.error: str | None = None
        self._lock = threading.Lock()
        self._times: deque[float] = deque(maxlen=FPS_WINDOW)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="preview-camera", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def latest(self) -> tuple[Snapshot, bytes, str | None]:
        with self._lock:
            return self.snapshot, self.jpeg, self.error

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                frame = self.source.read()
                if frame is None:
                    break
                self.show(frame.luma, frame.seq)
        except GateError as exc:  # a stalled or missing camera: say so on the page
            with self._lock:
                self.error = str(exc)
            log.error("preview: %s", exc)

    def show(self, luma: np.ndarray, seq: int) -> Snapshot:
        """Measure and annotate one frame, and make it the one the page shows."""
        from .selftest import mask_codes, measure

        self._times.append(self.clock())
        codes = self.decoder.decode(luma)
        versions = self.versions(luma)
        boxes, tips = [], []
        for code in codes:
            report = measure(luma, code.corners, versions.get(code.sha256), code.sha256)
            q = measure_quality(luma, region_of(code.corners, luma.shape))
            boxes.append(CodeBox([(int(x), int(y)) for x, y in code.corners],
                                 report.px_per_module, q.blur_px, code.sha256[:12]))
            tips += suggest(q, report.px_per_module)
        whole = measure_quality(luma)
        masked, _ = mask_codes(luma, [c.corners for c in codes])
        snap = Snapshot(seq, (luma.shape[1], luma.shape[0]), self._fps(), boxes, whole.mean,
                        whole.clipped, whole.contrast, whole.sharpness(),
                        list(dict.fromkeys(tips)))
        jpeg = annotate(masked, boxes)
        with self._lock:
            self.snapshot, self.jpeg = snap, jpeg
        return snap

    def _fps(self) -> float:
        t = self._times
        return round((len(t) - 1) / (t[-1] - t[0]), 1) if len(t) > 1 and t[-1] > t[0] else 0.0


def annotate(luma: np.ndarray, boxes: list[CodeBox]) -> bytes:
    """The frame as JPEG, each code outlined in green with its pixels per module."""
    from PIL import Image, ImageDraw

    img = Image.fromarray(luma, mode="L").convert("RGB")
    draw = ImageDraw.Draw(img)
    for box in boxes:
        if len(box.corners) >= 2:
            draw.polygon(box.corners, outline=(0, 220, 0), width=3)
            x, y = min(p[0] for p in box.corners), min(p[1] for p in box.corners)
            label = f"{box.px_per_module:.1f} px/module" if box.px_per_module else "read"
            draw.text((x, max(0, y - 12)), label, fill=(0, 255, 0))
    out = io.BytesIO()
    img.save(out, format="JPEG", quality=JPEG_QUALITY)
    return out.getvalue()


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>gate preview</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font:15px sans-serif;margin:1em;background:#111;color:#eee}
img{max-width:100%;border:1px solid #444}dt{float:left;width:11em;color:#aaa}
dd{margin:0 0 .3em 11em}li{color:#fc6}</style></head>
<body><h1>gate preview</h1><img id="frame" alt="camera frame" src="">
<dl><dt>frames per second</dt><dd id="fps">-</dd><dt>codes read</dt><dd id="codes">-</dd>
<dt>pixels per module</dt><dd id="ppm">-</dd><dt>sharpness</dt><dd id="sharpness">-</dd>
<dt>exposure</dt><dd id="exposure">-</dd></dl><ul id="tips"></ul><p id="error"></p>
<script>
const token = new URLSearchParams(location.search).get("token") || "";
const q = token ? "token=" + encodeURIComponent(token) + "&" : "";
const $ = (id) => document.getElementById(id);
async function tick() {
  try {
    const r = await fetch("stats.json?" + q);
    const s = await r.json();
    $("fps").textContent = s.fps.toFixed(1);
    $("codes").textContent = String(s.codes.length);
    $("ppm").textContent = s.codes.map(c => c.px_per_module === null ? "?" :
        c.px_per_module.toFixed(1)).join(", ") || "-";
    $("sharpness").textContent = s.codes.map(c => c.blur_px === null ? "?" :
        "blur " + c.blur_px.toFixed(1) + " px").join(", ") ||
        (s.sharpness === null ? "-" : "frame " + s.sharpness.toFixed(2));
    $("exposure").textContent = "mean " + s.mean.toFixed(0) + " of 255, " +
        (100 * s.clipped).toFixed(1) + "% clipped, contrast " + s.contrast.toFixed(0);
    $("tips").replaceChildren(...s.tips.map(t => { const li = document.createElement("li");
        li.textContent = t; return li; }));
    $("error").textContent = s.error || "";
    $("frame").src = "frame.jpg?" + q + "seq=" + s.seq;
  } catch (e) { $("error").textContent = "preview unreachable"; }
  setTimeout(tick, 250);
}
tick();
</script></body></html>
"""


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class PreviewServer:
    """The page, the latest frame and its figures over HTTP; a token unless on loopback."""

    def __init__(self, preview: Preview, host: str, port: int, token: str | None = None) -> None:
        self.preview = preview
        self.token = token if token is not None else (
            None if is_loopback(host) else secrets.token_urlsafe(18))
        self.httpd = ThreadingHTTPServer((host, port), _handler(self))
        self.httpd.daemon_threads = True
        self._serving = threading.Event()

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        shown = host.decode() if isinstance(host, bytes) else host
        return f"http://{shown}:{port}/" + (f"?token={self.token}" if self.token else "")

    def allowed(self, query: dict[str, list[str]]) -> bool:
        if self.token is None:
            return True
        given = (query.get("token") or [""])[0]
        return hmac.compare_digest(given.encode(), self.token.encode())

    def serve_forever(self) -> None:
        self._serving.set()
        self.httpd.serve_forever(poll_interval=0.2)

    def shutdown(self) -> None:
        if self._serving.is_set():  # shutdown() waits for a serve_forever that never ran
            self.httpd.shutdown()
        self.httpd.server_close()


def _handler(server: PreviewServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            url = urlsplit(self.path)
            if not server.allowed(parse_qs(url.query)):
                self._send(403, "text/plain", b"a token is needed: use the URL gate preview printed\n")
                return
            snap, jpeg, error = server.preview.latest()
            if url.path == "/":
                self._send(200, "text/html; charset=utf-8", PAGE.encode())
            elif url.path == "/stats.json":
                body: dict[str, Any] = asdict(snap) | {"error": error}
                self._send(200, "application/json", json.dumps(body).encode())
            elif url.path == "/frame.jpg" and jpeg:
                self._send(200, "image/jpeg", jpeg)
            else:
                self._send(404, "text/plain", b"not found\n")

        def _send(self, status: int, ctype: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # the URL holds the token
            log.debug("preview: %s", self.command)

    return Handler


def parse_listen(listen: str) -> tuple[str, int]:
    """HOST:PORT ([::1]:PORT for IPv6); port 0 picks a free one."""
    host, sep, port = listen.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"must be HOST:PORT, e.g. 127.0.0.1:8088, got {listen!r}")
    return host, int(port)


def run_preview(cfg: Config, host: str, port: int, say: Callable[[str], None] = print) -> int:
    """Serve the page until SIGTERM or SIGINT; 0 then. The camera is the gate's own."""
    import signal

    from .scan.camera import open_source
    from .scan.decode import make_decoder
    from .selftest import zxing_reads

    stop = threading.Event()
    source = open_source(cfg.camera, stop)
    try:
        decoder = make_decoder(cfg.decoder.backend, cfg.decoder.second_chance,
                               cfg.decoder.second_chance_min_score)
        preview = Preview(source, decoder, versions=lambda luma: zxing_reads(luma)[0])
        server = PreviewServer(preview, host, port)
        preview.start()

        def on_stop(_signum: int, _frame: object) -> None:
            stop.set()
            threading.Thread(target=server.shutdown, daemon=True).start()

        signal.signal(signal.SIGTERM, on_stop)
        signal.signal(signal.SIGINT, on_stop)
        say(f"preview: {server.url}" + ("" if server.token is None else
                                         "  (the token is needed off loopback)"))
        server.serve_forever()
        preview.stop()
    finally:
        stop.set()
        source.close()
    return 0
