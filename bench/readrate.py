"""Read rate, honestly measured: a tuning set, report sets the tuning never saw, real photos.

    python -m bench.readrate --quick                 # 40 frames a set, sweep 12 a point
    python -m bench.readrate --photos DIR            # + a real-photo set (or GATE_BENCH_PHOTOS)
    python -m bench.readrate --wechat-models DIR     # + OpenCV's WeChat engine with its CNNs

Sets (hard: 2.0-3.5 pixels per module at the 640x480 lores stream):

- **tuning**: the generator's hard frames (seed "code", Gaussian blur): what gate/rescue.py's
  parameters were chosen on. A gain here alone proves nothing.
- **report**: the same generator with another seed AND another distortion model (a motion
  line, or a defocus disk): nothing was tuned on these.
- **dual**: frames rendered at the main stream's resolution (3x lores, 1920x1440) through a
  lens blur in main-stream pixels; lores is the ISP's downscale of it (an area average).
  Tuning ("dual-tune", Gaussian lens) and report ("dual-report", defocus disk, another seed).
- **photos**: real photographs (``--photos``), never tuned on; read as single frames, as
  `gate decode` does. Names the set in the output.

Every strategy starts with the raw zxing-cpp pass and tries more only when it read nothing.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import zxingcpp
from PIL import Image

from bench.common import header, ms, pct, quiet_gc, seed_for, table, timed
from bench.photos import load_photos, photo_dir
from bench.scenes import SceneParams, empty_scene, make_entrance, random_payload, render_scene, sample_params
from gate.scan.decode import qr_formats
from gate.scan.second_chance import Box, SecondChance, Wiener

QR = qr_formats(zxingcpp)
LORES = (640, 480)
SCALE = 3  # main stream / lores: 1920x1440 for 640x480 (same field of view, 4:3)
# Lens blur sigma in main-stream pixels. "focused": the lens set to the presentation distance
# ([camera] lens_position), the code within a few cm of it; "defocused": 0.5-1.5 lores pixels,
# the lores generator's hard blur, where more pixels cannot help (the optics are the limit).
LENSES: dict[str, tuple[float, float]] = {"focused": (0.8, 2.0), "defocused": (1.5, 4.5)}

Decode = Callable[[np.ndarray], list[str]]


@dataclass(frozen=True)
class Sample:
    lores: np.ndarray
    payload: str  # "" for a frame with no code
    main: np.ndarray | None = None
    ppm: float = 0.0  # at lores


# ----------------------------------------------------------------------------- frame sets

def lores_set(name: str, n: int, psf: str, seed: str) -> list[Sample]:
    """``n`` hard frames rendered at 640x480 directly (the lores-only generator)."""
    out = []
    for i in range(n):
        rng = np.random.default_rng(seed_for(seed, "hard", LORES, i))
        params = replace(sample_params(rng, "hard"), psf=psf)
        y, truth = render_scene(rng, params, LORES, random_payload(rng))
        out.append(Sample(y, truth.payload, None, params.ppm))
    return out


def dual_frame(rng: np.random.Generator, params: SceneParams, lens: float,
               payload: str) -> Sample:
    """One scene at main-stream resolution, and its lores stream (``params.ppm`` at lores)."""
    size = (LORES[0] * SCALE, LORES[1] * SCALE)
    main_params = replace(params, ppm=params.ppm * SCALE, blur_sigma=lens)
    main, _ = render_scene(rng, main_params, size, payload)
    lores = np.asarray(Image.fromarray(main).reduce(SCALE))
    return Sample(lores, payload, main, params.ppm)


def dual_set(n: int, psf: str, seed: str, ppm: float | None = None,
             lens_range: tuple[float, float] = LENSES["focused"]) -> list[Sample]:
    out = []
    for i in range(n):
        rng = np.random.default_rng(seed_for(seed, ppm, i))
        params = replace(sample_params(rng, "hard"), psf=psf)
        if ppm is not None:
            params = replace(params, ppm=ppm)
        lens = float(rng.uniform(*lens_range))
        out.append(dual_frame(rng, params, lens, random_payload(rng)))
    return out


def empty_dual(n: int) -> list[Sample]:
    """Entrances with no code (half with a person walking through), both streams."""
    out = []
    size = (LORES[0] * SCALE, LORES[1] * SCALE)
    for i in range(n):
        rng = np.random.default_rng(seed_for("readrate-empty", i))
        entrance = make_entrance(rng, size, float(rng.uniform(70, 170)), float(rng.uniform(0, 0.5)))
        main = empty_scene(rng, size, float(rng.uniform(1, 8)), entrance, person=i % 2 == 1,
                           blur=float(rng.uniform(*LENSES["focused"])))
        out.append(Sample(np.asarray(Image.fromarray(main).reduce(SCALE)), "", main))
    return out


# ----------------------------------------------------------------------------- strategies

def zx(image: np.ndarray, **options: Any) -> list[zxingcpp.Barcode]:
    return zxingcpp.read_barcodes(image, formats=QR, **options)


def corners(b: zxingcpp.Barcode) -> tuple[tuple[int, int], ...]:
    p = b.position
    return tuple((int(q.x), int(q.y))
                 for q in (p.top_left, p.top_right, p.bottom_right, p.bottom_left))


def _found_texts(found: Sequence[tuple[bytes, object]]) -> list[str]:
    return [data.decode("utf-8", "replace") for data, _ in found]


def _read_restored(image: np.ndarray) -> list[tuple[bytes, tuple[tuple[int, int], ...]]]:
    return [(bytes(b.bytes), corners(b)) for b in zx(image, try_downscale=False) if b.valid]


class Strategy:
    """One way to decode a sample; ``looks`` counts samples that needed more than the raw
    pass (so the cost on frames with no code can be read as a share)."""

    def __init__(self, name: str, main: bool = False,
                 second: Callable[[Sample, list[zxingcpp.Barcode]], list[str]] | None = None):
        self.name, self.main, self.second = name, main, second
        self.looks = 0

    def __call__(self, s: Sample) -> list[str]:
        codes = zx(s.lores, return_errors=self.second is not None)
        texts = [c.text for c in codes if c.valid]
        if texts or self.second is None:
            return texts
        return self.second(s, [c for c in codes if not c.valid])


def _regions(sc: SecondChance, s: Sample, failed: list[zxingcpp.Barcode]) -> list[Box]:
    return sc.regions(s.lores, [corners(c) for c in failed])


def second_chance() -> Callable[[Sample, list[zxingcpp.Barcode]], list[str]]:
    """gate/rescue.py as the daemon runs it (no last sighting: a code never seen before)."""
    sc = SecondChance(_read_restored)

    def look(s: Sample, failed: list[zxingcpp.Barcode]) -> list[str]:
        return _found_texts(sc.rescue(s.lores, [corners(c) for c in failed]))
    return look


def _zx_texts(crop: np.ndarray) -> list[str]:
    return [c.text for c in zx(crop) if c.valid]


def _zx_wiener(crop: np.ndarray) -> list[str]:
    """A main-stream crop as it is, then Wiener-restored at its own size (sigma in main px)."""
    texts = _zx_texts(crop)
    for step in MAIN_CHAIN:
        if texts:
            break
        texts = [c.text for c in zx(step.apply(np.ascontiguousarray(crop), 1),
                                    try_downscale=False) if c.valid]
    return texts


MAIN_CHAIN = (Wiener(2.5, 0.03), Wiener(4.0, 0.02))


def main_crops(then_rescue: bool, reader: Decode | None = None
               ) -> Callable[[Sample, list[zxingcpp.Barcode]], list[str]]:
    """The same regions, read at full resolution in the main stream's Y plane (a view, no
    copy); optionally then the lores restoration of the regions still unread."""
    sc = SecondChance(_read_restored)
    read: Decode = reader or _zx_texts

    def look(s: Sample, failed: list[zxingcpp.Barcode]) -> list[str]:
        assert s.main is not None
        fy, fx = s.main.shape[0] / s.lores.shape[0], s.main.shape[1] / s.lores.shape[1]
        for box in _regions(sc, s, failed):
            crop = s.main[int(box.y0 * fy):int(box.y1 * fy), int(box.x0 * fx):int(box.x1 * fx)]
            texts = read(crop)
            if texts:
                return texts
        if then_rescue:
            return _found_texts(sc.rescue(s.lores, [corners(c) for c in failed]))
        return []
    return look


class OpenCv:
    """OpenCV's QR engines as a whole-frame second look (opencv-contrib-python-headless)."""

    def __init__(self, models: Path | None) -> None:
        import cv2
        self.cv2: Any = cv2  # the contrib modules have no stubs
        self.aruco = cv2.QRCodeDetectorAruco()
        self.wechat_plain = self.cv2.wechat_qrcode_WeChatQRCode()
        self.wechat_cnn: Any = None
        if models is not None:
            m = [str(models / f) for f in ("detect.prototxt", "detect.caffemodel",
                                           "sr.prototxt", "sr.caffemodel")]
            self.wechat_cnn = self.cv2.wechat_qrcode_WeChatQRCode(*m)

    def read_aruco(self, y: np.ndarray) -> list[str]:
        ok, texts, _, _ = self.aruco.detectAndDecodeMulti(np.ascontiguousarray(y))
        return [t for t in texts if t] if ok else []

    def read_plain(self, y: np.ndarray) -> list[str]:
        return list(self.wechat_plain.detectAndDecode(np.ascontiguousarray(y))[0])

    def read_cnn(self, y: np.ndarray) -> list[str]:
        assert self.wechat_cnn is not None
        return list(self.wechat_cnn.detectAndDecode(np.ascontiguousarray(y))[0])


def whole(read: Decode) -> Callable[[Sample, list[zxingcpp.Barcode]], list[str]]:
    return lambda s, _failed: read(s.lores)


def strategies(cv: OpenCv | None, dual: bool) -> list[Strategy]:
    out = [Strategy("raw zxing-cpp"), Strategy("+ second chance (default)", second=second_chance())]
    if cv is not None:
        out.append(Strategy("+ OpenCV QRCodeDetectorAruco", second=whole(cv.read_aruco)))
        out.append(Strategy("+ WeChat, no CNN", second=whole(cv.read_plain)))
        if cv.wechat_cnn is not None:
            out.append(Strategy("+ WeChat CNN detector + SR", second=whole(cv.read_cnn)))
            sc = second_chance()
            out.append(Strategy("+ second chance, then WeChat CNN", second=lambda s, f: (
                sc(s, f) or cv.read_cnn(s.lores))))
    if dual:
        out.append(Strategy("+ main-stream crops", True, main_crops(False)))
        out.append(Strategy("+ main-stream crops, then second chance", True, main_crops(True)))
        out.append(Strategy("+ main crops Wiener, then second chance", True,
                            main_crops(True, _zx_wiener)))
        if cv is not None and cv.wechat_cnn is not None:
            out.append(Strategy("+ main-stream crops read by WeChat CNN", True,
                                main_crops(False, cv.read_cnn)))
    return out


# ----------------------------------------------------------------------------- measuring

@dataclass
class Result:
    reads: int
    wrong: int
    times: list[float]


def run_set(strategy: Strategy, samples: Sequence[Sample], repeat: int = 1) -> Result:
    r = Result(0, 0, [])
    with quiet_gc():
        for s in samples:
            texts, dt = timed(strategy, s, repeat)
            r.times.append(dt)
            r.reads += bool(s.payload) and s.payload in texts
            r.wrong += sum(t != s.payload for t in texts)
    return r


def report(title: str, sets: dict[str, list[Sample]], empties: list[Sample],
           strats: list[Strategy]) -> None:
    headers = ["strategy"] + [f"{k} ({len(v)})" for k, v in sets.items()] + [
        "wrong", "code ms med", "code p95", "empty ms med", "empty p95"]
    rows = []
    for st in strats:
        if st.main and any(s.main is None for v in sets.values() for s in v):
            continue
        results = [run_set(st, v) for v in sets.values()]
        empty = run_set(st, empties) if empties else Result(0, 0, [0.0])
        code_t = [t for r in results for t in r.times]
        rows.append([st.name] + [pct(r.reads, len(v)) for r, v in zip(results, sets.values())]
                    + [sum(r.wrong for r in results) + empty.wrong, *ms(code_t),
                       *ms(empty.times)])
    print(title)
    print(table(headers, rows))
    print(flush=True)


def photos_report(root: Path, cv: OpenCv | None) -> None:
    photos = load_photos(root)
    groups = sorted({p.group for p in photos})
    strats = strategies(cv, dual=False)
    headers = ["strategy"] + [f"{g} ({sum(p.group == g for p in photos)})" for g in groups] + [
        "all", "other", "ms med", "ms p95"]
    rows = []
    for st in strats:
        reads = {g: 0 for g in groups}
        wrong, times = 0, []
        for p in photos:
            texts, dt = timed(st, Sample(p.luma, p.payload))
            times.append(dt)
            reads[p.group] += p.payload in texts
            wrong += sum(t != p.payload for t in texts)
        rows.append([st.name] + [f"{reads[g]}" for g in groups]
                    + [pct(sum(reads.values()), len(photos)), wrong, *ms(times)])
    print(f"Real photos, never tuned on: {len(photos)} images with an expected payload under"
          f" {root} (read whole, as `gate decode` does; counts per directory)")
    print(table(headers, rows))
    print("'other': decoded payloads that differ from the .txt: in zxing-cpp's set these are a"
          " second code in the same photo and human-readable renderings (GS1, control"
          " characters) of the expected text, not misreads")
    print(flush=True)


def sweep(n: int, lens: str) -> None:
    """Read rate against pixels per module at lores, lores alone and with main-stream crops."""
    points = [1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0]
    strats = [Strategy("raw zxing-cpp"), Strategy("+ second chance", second=second_chance()),
              Strategy("+ main crops, then second chance", True, main_crops(True)),
              Strategy("+ main crops Wiener, then second chance", True,
                       main_crops(True, _zx_wiener))]
    rows = []
    for ppm in points:
        samples = dual_set(n, "disk", "sweep", ppm, LENSES[lens])
        results = [run_set(st, samples) for st in strats]
        rows.append([f"{ppm:.1f}"] + [pct(r.reads, n) for r in results]
                    + [sum(r.wrong for r in results)])
    lo, hi = LENSES[lens]
    print(f"Distance sweep, {lens} lens: {n} dual-stream frames a point (defocus-disk lens blur"
          f" {lo}-{hi} main px, other distortions from the hard preset); the main stream"
          f" is {SCALE}x lores, so it has {SCALE}x the pixels per module")
    print(table(["px/module at lores"] + [s.name for s in strats] + ["wrong"], rows))
    print(flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.readrate",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="40 frames a set, 12 a sweep point")
    parser.add_argument("--n", type=int, help="frames per set (default 200, quick 40)")
    parser.add_argument("--photos", help="a real-photo set (or $GATE_BENCH_PHOTOS)")
    parser.add_argument("--wechat-models", type=Path,
                        help="directory with WeChat's detect/sr .prototxt and .caffemodel")
    parser.add_argument("--no-opencv", action="store_true", help="skip OpenCV's engines")
    parser.add_argument("--only", choices=["lores", "dual", "photos", "sweep"], nargs="+")
    args = parser.parse_args(argv)
    n = args.n or (40 if args.quick else 200)
    only = set(args.only or ["lores", "dual", "photos", "sweep"])
    header("bench.readrate: read rate on tuning, report and real-photo sets", "bench.readrate")
    cv = None
    if not args.no_opencv:
        try:
            cv = OpenCv(args.wechat_models)
        except ImportError as exc:  # the bench extra: pip install '.[bench]'
            print(f"OpenCV rows left out: {exc} (pip install opencv-contrib-python-headless)\n")
    if "lores" in only:
        sets = {"tuning": lores_set("tuning", n, "gaussian", "code"),
                "report motion": lores_set("report", n, "motion", "report"),
                "report disk": lores_set("report", n, "disk", "report-disk")}
        empties = [Sample(s.lores, "") for s in empty_dual(max(8, n // 4))]
        report(f"Lores only (640x480 rendered directly), hard frames; ms per frame on one core,"
               f" {len(empties)} no-code frames", sets, empties, strategies(cv, dual=False))
    if "dual" in only:
        sets = {"dual-tune": dual_set(n, "gaussian", "dual-tune"),
                "dual-report": dual_set(n, "disk", "dual-report"),
                "dual-report defocused": dual_set(n, "disk", "dual-report",
                                                  lens_range=LENSES["defocused"])}
        report(f"Dual stream (lores 640x480 + main {LORES[0] * SCALE}x{LORES[1] * SCALE}),"
               f" hard at lores; lens blur in main px: tune Gaussian {LENSES['focused']}, report"
               f" disk {LENSES['focused']}, defocused disk {LENSES['defocused']}", sets,
               empty_dual(max(8, n // 4)), strategies(cv, dual=True))
    root = photo_dir(args.photos)
    if "photos" in only and root is not None:
        photos_report(root, cv)
    if "sweep" in only:
        for lens in LENSES:
            sweep(12 if args.quick else 40, lens)


if __name__ == "__main__":
    main()
