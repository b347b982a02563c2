"""Technician self-tests: pulse the relay once (`gate test-relay`); capture one frame, save it
and measure any QR code in it (`gate test-camera`), so the camera can be aimed and focused."""

from __future__ import annotations

import contextlib
import logging
import math
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from gpiozero.pins import Factory

from .config import Config
from .errors import GateError

log = logging.getLogger(__name__)

FINDER_MODULES = 7          # a finder pattern is 7 modules across: dark 1, light 1, dark 3, ...
MIN_PX_PER_MODULE = 3.0     # below this decoding gets unreliable on a real camera
EXPECT = {"secure": "the strike clicks and the door can be pushed open, then it locks again",
          "safe": "the maglock lets go of the door, then holds it again"}


# -- test-relay -------------------------------------------------------------------------------

@dataclass(frozen=True)
class RelayReport:
    pin: int
    open_s: float
    changes: list[tuple[float, str]]  # (seconds since the pulse began, "unlocked"/"locked")


def run_relay_test(cfg: Config, open_s: float | None = None,
                   say: Callable[[str], None] = print,
                   pin_factory: Factory | None = None) -> RelayReport:
    """Pulse the relay once for `open_s` (default [door] open_s), journaled like any door
    movement. The daemon must be stopped first: it holds the pin."""
    from .door.pins import claim_relay_pin, make_pin_factory
    from .door.relay import Door
    from .journal import DoorEvent, Journal, SystemEvent

    seconds = cfg.door.open_s if open_s is None else open_s
    factory = pin_factory if pin_factory is not None else make_pin_factory(cfg.gpio.pin_factory)
    relay = claim_relay_pin(cfg.door.relay_pin, cfg.door.relay_active_high, factory)
    changes: list[tuple[float, str]] = []
    locked = threading.Event()
    journal: Journal | None = None
    door: Door | None = None
    try:
        journal = Journal(cfg.journal_path, cfg.gate.id)
        started = time.monotonic()

        def changed(state: str) -> None:
            changes.append((time.monotonic() - started, state))
            assert journal is not None
            journal.record(DoorEvent(state, extra={"source": "test-relay"}))
            say(f"relay: {state} at +{changes[-1][0]:.2f} s")
            if state == "locked":
                locked.set()

        door = Door(relay, on_change=changed)
        journal.record(SystemEvent("test_relay", extra={"open_s": seconds}))
        say(f"pulsing relay pin {cfg.door.relay_pin} "
            f"({'active high' if cfg.door.relay_active_high else 'active low'}) for "
            f"{seconds:g} s; expect: {EXPECT[cfg.door.fail_mode]}")
        started = time.monotonic()
        door.release(seconds)
        if not locked.wait(seconds + 5.0):
            raise GateError("the relay did not lock again in time")
    finally:
        if door is not None:
            door.close()  # locks, whatever happened above
        else:
            relay.close()
        if journal is not None:
            journal.close()
    return RelayReport(cfg.door.relay_pin, seconds, changes)


# -- test-camera ------------------------------------------------------------------------------

@dataclass(frozen=True)
class CodeReport:
    sha256: str
    width_px: float
    version: int | None
    modules: int | None
    px_per_module: float | None
    method: str  # how the module count was found: "version" or "finder"
    blur_px: float | None = None   # estimated blur sigma over the code (scan/quality.py)
    mean: float = 0.0              # mean grey level over the code
    clipped: float = 0.0           # share of saturated pixels over the code
    tips: tuple[str, ...] = ()     # what to change in [camera], if anything


@dataclass(frozen=True)
class CameraReport:
    saved: Path
    size: tuple[int, int]
    mean_luma: float
    codes: list[CodeReport]
    masked: int = 0  # code regions painted over in the saved frame


MASK_SCALE = 1.3   # a region grown about its centre: the quiet zone and a blurred edge too
MASK_MARGIN_PX = 4
MASK_ROUNDS = 3


def run_camera_test(cfg: Config, output: Path, skip: int | None = None) -> CameraReport:
    """Capture one frame (after `skip` frames, so auto exposure settles), measure the codes
    in it, and save it as PNG (mode 0600) with every code it holds painted over: the frame
    shows aim, focus and light, never a pass someone could print again."""
    from .scan.camera import open_source
    from .scan.decode import make_decoder

    if skip is None:
        skip = 0 if cfg.camera.source == "files" else int(math.ceil(cfg.camera.fps))
    stop = threading.Event()
    source = open_source(cfg.camera, stop)
    try:
        frame = None
        for _ in range(skip + 1):
            frame = source.read() or frame
        if frame is None:
            raise GateError("the camera gave no frame")
    finally:
        source.close()
    luma = frame.luma
    decoder = make_decoder(cfg.decoder.backend)
    found = decoder.decode(luma)
    versions, zxing_regions = zxing_reads(luma)
    codes = [with_quality(luma, code.corners,
                          measure(luma, code.corners, versions.get(code.sha256), code.sha256))
             for code in found]
    corners: list[Sequence[tuple[float, float]]] = [c.corners for c in found]
    masked, regions = mask_codes(luma, corners + zxing_regions)
    save_private_png(masked, output)
    h, w = luma.shape
    return CameraReport(output, (w, h), round(float(luma.mean()), 1), codes, regions)


def with_quality(luma: np.ndarray, corners: Sequence[tuple[int, int]],
                 report: CodeReport) -> CodeReport:
    """The report with the sharpness and exposure of the code's region, and suggestions."""
    import dataclasses

    from .scan.quality import measure_quality, region_of, suggest

    q = measure_quality(luma, region_of(corners, luma.shape))
    return dataclasses.replace(report, blur_px=q.blur_px, mean=q.mean, clipped=q.clipped,
                               tips=tuple(suggest(q, report.px_per_module)))


def mask_codes(luma: np.ndarray, regions: Sequence[Sequence[tuple[float, float]]]
               ) -> tuple[np.ndarray, int]:
    """A copy of `luma` with each region (and any code still read after that, by either
    backend) filled flat. If codes still read after a few rounds, the whole frame is
    blanked: a saved frame that decodes is worse than none."""
    from .errors import DecoderUnavailable
    from .scan.decode import make_decoder

    readers = []
    for backend in ("zxing", "pyzbar"):
        try:
            readers.append(make_decoder(backend))
        except DecoderUnavailable:
            continue
    out = luma.copy()
    fill = int(np.median(luma))
    count = 0
    for _ in range(MASK_ROUNDS):
        for corners in regions:
            _fill_region(out, corners, fill)
        count += len(regions)
        regions = [code.corners for reader in readers for code in reader.decode(out)]
        if not regions:
            return out, count
    log.warning("test-camera: codes still read after masking; saving a blank frame")
    out[:] = fill
    return out, count


def _fill_region(luma: np.ndarray, corners: Sequence[tuple[float, float]], fill: int) -> None:
    from PIL import Image, ImageDraw

    pts = [(float(x), float(y)) for x, y in corners]
    if not pts:
        return
    cx, cy = statistics.fmean(x for x, _ in pts), statistics.fmean(y for _, y in pts)
    grown = []
    for x, y in pts:
        dx, dy = x - cx, y - cy
        d = math.hypot(dx, dy) or 1.0
        grown.append((cx + dx * MASK_SCALE + dx / d * MASK_MARGIN_PX,
                      cy + dy * MASK_SCALE + dy / d * MASK_MARGIN_PX))
    if len(grown) < 3:  # a point or a line: cover a square around it
        r = max(max(abs(x - cx), abs(y - cy)) for x, y in grown) + MASK_MARGIN_PX
        grown = [(cx - r, cy - r), (cx + r, cy - r), (cx + r, cy + r), (cx - r, cy + r)]
    mask = Image.new("L", (luma.shape[1], luma.shape[0]), 0)
    ImageDraw.Draw(mask).polygon(grown, fill=255)
    luma[np.asarray(mask) > 0] = fill


def save_private_png(luma: np.ndarray, output: Path) -> None:
    """Write the PNG through a 0600 temporary file renamed over `output`: the result is
    0600 even where `output` existed with a wider mode, and never half-written."""
    import os
    import tempfile

    from PIL import Image

    output.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=output.parent, prefix=".test-camera-", suffix=".png")
    try:
        with os.fdopen(fd, "wb") as f:
            Image.fromarray(luma, mode="L").save(f, format="PNG")
        os.chmod(tmp, 0o600)
        os.replace(tmp, output)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def zxing_reads(luma: np.ndarray
                ) -> tuple[dict[str, int], list[Sequence[tuple[float, float]]]]:
    """QR version of each code zxing-cpp reads, by payload hash ({} without zxing-cpp or
    with one that does not report it: 3.1 has it in Barcode.extra["Version"]), and the
    corners of every code it reads, to be masked."""
    import hashlib

    from .scan.decode import qr_formats

    try:
        import zxingcpp
    except ImportError:
        return {}, []
    versions: dict[str, int] = {}
    regions: list[Sequence[tuple[float, float]]] = []
    for b in zxingcpp.read_barcodes(luma, formats=qr_formats(zxingcpp)):
        pos = b.position
        regions.append([(float(p.x), float(p.y)) for p in
                        (pos.top_left, pos.top_right, pos.bottom_right, pos.bottom_left)])
        extra = getattr(b, "extra", None) or {}
        try:
            versions[hashlib.sha256(bytes(b.bytes)).hexdigest()] = int(extra["Version"])
        except (KeyError, TypeError, ValueError):
            continue
    return versions, regions


def measure(luma: np.ndarray, corners: Sequence[tuple[int, int]], version: int | None,
            sha256: str) -> CodeReport:
    """Width in pixels from the corners; modules from the version (17 + 4 v), else from a
    finder pattern (7 modules) found at one of the corners."""
    pts = [(float(x), float(y)) for x, y in corners]
    width = (statistics.fmean(math.dist(pts[i], pts[(i + 1) % len(pts)])
                              for i in range(len(pts))) if len(pts) >= 3 else 0.0)
    modules, method = (17 + 4 * version, "version") if version else (None, "finder")
    if modules is None and len(pts) == 4:
        modules = modules_from_finder(luma, pts)
    ppm = round(width / modules, 1) if modules and width else None
    return CodeReport(sha256, round(width, 1), version, modules, ppm, method)


def modules_from_finder(luma: np.ndarray, corners: Sequence[tuple[float, float]]) -> int | None:
    """Walk the diagonal from each corner inward: at a finder pattern's corner the dark and
    light runs go 1:1:3:1:1 (7 modules in all), which gives the module size along the
    diagonal; the code's diagonal over it is the module count. A few parallel lines per
    corner, and the median of the estimates, ride out jagged edges."""
    threshold = (float(luma.min()) + float(luma.max())) / 2
    estimates = []
    for i in range(4):
        start, end = np.array(corners[i]), np.array(corners[(i + 2) % 4])
        diag = float(np.linalg.norm(end - start))
        if diag < 30:
            continue
        along = (end - start) / diag
        across = np.array([-along[1], along[0]])
        n = int(diag * 0.45)  # a finder spans at most 7/21 of the diagonal
        t = np.arange(n, dtype=float)
        for offset in (-1.5, -0.75, 0.0, 0.75, 1.5):
            points = start + np.outer(t, along) + offset * across
            xs = np.clip(np.rint(points[:, 0]).astype(int), 0, luma.shape[1] - 1)
            ys = np.clip(np.rint(points[:, 1]).astype(int), 0, luma.shape[0] - 1)
            runs = _runs(luma[ys, xs] < threshold)
            if runs and not runs[0][0] and runs[0][1] <= 3:
                runs = runs[1:]  # the corner point fell just outside the code
            if len(runs) < 5 or not runs[0][0]:
                continue
            lengths = [length for _, length in runs[:5]]
            # A line beside the diagonal crosses the square on a chord 2|offset| shorter.
            unit = (sum(lengths) + 2 * abs(offset)) / FINDER_MODULES  # diagonal px per module
            if all(abs(length - want * unit) <= 0.5 * unit + 0.5
                   for length, want in zip(lengths, (1, 1, 3, 1, 1))):
                estimates.append(diag / unit)
    if len(estimates) < 2:
        return None
    raw = statistics.median(estimates)
    version = max(1, min(40, round((raw - 17) / 4)))
    return 17 + 4 * version


def _runs(values: np.ndarray) -> list[tuple[bool, int]]:
    runs: list[tuple[bool, int]] = []
    for v in values.tolist():
        if runs and runs[-1][0] == v:
            runs[-1] = (v, runs[-1][1] + 1)
        else:
            runs.append((v, 1))
    return runs


def format_camera_report(r: CameraReport) -> str:
    lines = [f"frame: {r.size[0]}x{r.size[1]} saved to {r.saved} (mean brightness "
             f"{r.mean_luma:.0f} of 255{_exposure_hint(r.mean_luma)})"]
    if r.masked:
        lines.append(f"codes painted over in the saved frame: {r.masked} (a saved pass could "
                     "be printed again)")
    if not r.codes:
        lines.append("QR: none read. Hold a code where visitors will, check focus and light, "
                     "and look at the saved frame.")
    for i, c in enumerate(r.codes, 1):
        size = f"QR {i}: read, {c.width_px:.0f} px wide"
        if c.px_per_module is None:
            lines.append(f"{size}; module size unknown (code {c.sha256[:12]}…)")
            continue
        how = f"version {c.version}" if c.version else "from its finder pattern"
        verdict = ("good" if c.px_per_module >= MIN_PX_PER_MODULE else
                   f"too small: aim for at least {MIN_PX_PER_MODULE:g} px per module "
                   "(closer, or a larger code)")
        lines.append(f"{size}, {c.modules} modules ({how}), {c.px_per_module:.1f} px per "
                     f"module: {verdict} (code {c.sha256[:12]}…)")
        blur = "?" if c.blur_px is None else f"{c.blur_px:.1f} px"
        lines.append(f"  sharpness: blur {blur}; exposure: mean {c.mean:.0f} of 255, "
                     f"{100 * c.clipped:.1f}% clipped")
        lines += [f"  suggestion: {tip}" for tip in c.tips]
    return "\n".join(lines)


def _exposure_hint(mean: float) -> str:
    if mean < 40:
        return ": dark, add light"
    if mean > 215:
        return ": bright, check for glare"
    return ""
