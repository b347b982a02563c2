"""Second chances for frames the first zxing-cpp pass cannot read: what each rescues, what it costs.

    python -m bench.second_chance            # 200 hard + 200 medium at 640x480, 80 no-code: ~5 min
    python -m bench.second_chance --quick    # 40 + 40 and 24 empty: about 30 s
    python -m bench.second_chance --stress 1000   # only hunt for wrong payloads

Every strategy runs the raw pass first and only tries more when it read nothing, so on an
empty entrance its second chance runs on every frame that reaches the decoder: the tables
show that cost apart, on empty frames with and without a person walking through.

The building blocks (``Box``, ``deconvolve``, ``find_candidate``, ``read_roi``, the
``SecondChance`` policy) live in gate/scan/second_chance.py, which the daemon's zxing decoder uses; this
file keeps only what the experiment compares them with (unsharp masks, contrast
normalisations, whole-frame upscales) and the sweeps that chose the defaults.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import zxingcpp
from PIL import Image, ImageFilter

from bench.common import (
    CodeFrame,
    code_frames,
    header,
    ms,
    pct,
    quiet_gc,
    seed_for,
    table,
    timed,
)
from bench.scenes import empty_scene, make_entrance, make_scene
from gate.scan import second_chance as rescue
from gate.scan.decode import qr_formats
from gate.scan.second_chance import Box, Restoration, deconvolve, find_candidate

# QRCodeModel2, not QRCode: in zxing-cpp 3.x QRCode is the family and includes Micro QR,
# whose M1 symbols (numeric, no error correction) a restored crop can fake: a second chance
# once "read" 2336 in a hard frame that way. Plain QR reads exactly as before, a bit faster.
QR = qr_formats(zxingcpp)
SIZE = (640, 480)


# ----------------------------------------------------------------------------- alternatives

def read(y: np.ndarray, **options: object) -> list[zxingcpp.Barcode]:
    return zxingcpp.read_barcodes(y, formats=QR, **options)


def valid_texts(codes: Sequence[zxingcpp.Barcode]) -> list[str]:
    """Payloads of the codes that decoded; never those ``return_errors`` adds."""
    return [c.text for c in codes if c.valid]


def read_found(image: np.ndarray) -> list[rescue.Found]:
    """gate.scan.second_chance's reader: a restored crop, at its own size, decoded symbols only."""
    return [(bytes(c.bytes), ()) for c in read(image, try_downscale=False) if c.valid]


def texts(found: Sequence[rescue.Found]) -> list[str]:
    return [data.decode("utf-8", "replace") for data, _ in found]


def stretch(y: np.ndarray, cut: float = 1.0) -> np.ndarray:
    """Percentile contrast stretch (``cut`` % clipped at each end), through a lookup table."""
    img = Image.fromarray(y)
    cdf = np.cumsum(img.histogram()) / y.size * 100.0
    lo, hi = int(np.searchsorted(cdf, cut)), int(np.searchsorted(cdf, 100.0 - cut))
    lut = np.clip((np.arange(256) - lo) * 255.0 / max(1, hi - lo), 0, 255).astype(np.uint8)
    return np.asarray(img.point(lut.tolist()))


def local_normalise(y: np.ndarray, radius: int = 8) -> np.ndarray:
    """CLAHE-like: each pixel against its neighbourhood's mean and mean deviation."""
    img = Image.fromarray(y)
    mean = np.asarray(img.filter(ImageFilter.BoxBlur(radius)), np.int16)
    dev = np.abs(y.astype(np.int16) - mean).astype(np.uint8)
    spread = np.asarray(Image.fromarray(dev).filter(ImageFilter.BoxBlur(radius)), np.float32)
    out = 128.0 + 64.0 * (y.astype(np.float32) - mean) / (spread + 4.0)
    return np.clip(out, 0, 255).astype(np.uint8)


def upscale(y: np.ndarray, factor: int = 2,
            resample: Image.Resampling = Image.Resampling.BICUBIC) -> np.ndarray:
    img = Image.fromarray(y)
    return np.asarray(img.resize((img.width * factor, img.height * factor), resample))


def unsharp(y: np.ndarray, radius: float = 3.0, percent: int = 200) -> np.ndarray:
    return np.asarray(Image.fromarray(y).filter(ImageFilter.UnsharpMask(radius, percent, 0)))


@dataclass(frozen=True)
class Sharpen:
    """A restoration to compare with gate.scan.second_chance.Wiener: Wiener and/or an unsharp mask."""

    name: str
    wiener: tuple[float, float] | None = None  # (sigma, noise)
    unsharp: tuple[float, int] | None = None  # (radius, percent), applied after the upscale

    def apply(self, crop: np.ndarray, factor: int) -> np.ndarray:
        if self.wiener is not None:
            crop = deconvolve(crop, *self.wiener)
        img = Image.fromarray(crop)
        img = img.resize((img.width * factor, img.height * factor), Image.Resampling.BICUBIC)
        if self.unsharp is not None:
            img = img.filter(ImageFilter.UnsharpMask(self.unsharp[0], self.unsharp[1], 0))
        return np.asarray(img)


UNSHARP = (Sharpen("unsharp 3/200", unsharp=(3.0, 200)),
           Sharpen("unsharp 2/400", unsharp=(2.0, 400)))
WIENER: tuple[Restoration, ...] = rescue.WIENER_CHAIN  # what the gate uses


def read_roi(y: np.ndarray, box: Box, chain: Sequence[Restoration] = WIENER) -> list[str]:
    return texts(rescue.read_roi(read_found, y, box, chain))


class Recipe:
    """gate.scan.second_chance.SecondChance driven as the experiment needs: raw pass (return_errors), then
    regions; the last sighting is given per frame, and the texture detector runs only on
    frames numbered a multiple of ``every`` (0: never) with its score gate at ``gate``."""

    def __init__(self, gate: float = 1.5, every: int = 1,
                 chain: Sequence[Restoration] = WIENER) -> None:
        self.every = every
        self.sc = rescue.SecondChance(read_found, gate, chain)

    @property
    def tried(self) -> int:
        return self.sc.tried

    def decode(self, y: np.ndarray, last_seen: Box | None = None, frame_no: int = 0) -> list[str]:
        self.sc.tried = 0
        codes = read(y, return_errors=True)
        found = valid_texts(codes)
        if found:
            return found
        failed = [tuple((int(q.x), int(q.y)) for q in (c.position.top_left, c.position.top_right,
                                                         c.position.bottom_right,
                                                         c.position.bottom_left))
                  for c in codes]
        self.sc.last_seen = last_seen
        detector = bool(self.every) and frame_no % self.every == 0
        return texts(self.sc.rescue(y, failed, detector))


# ----------------------------------------------------------------------------- experiment

Strategy = Callable[[np.ndarray, "Box | None", int], list[str]]


def _first_pass_then(fallback: Callable[[np.ndarray], list[str]]) -> Strategy:
    def decode(y: np.ndarray, _hint: Box | None, _frame_no: int) -> list[str]:
        return valid_texts(read(y)) or fallback(y)
    return decode


def _roi_detector(chain: Sequence[Sharpen]) -> Strategy:
    return _first_pass_then(lambda y: read_roi(y, find_candidate(y)[1], chain))


def _with_sighting(y: np.ndarray, hint: Box | None, _frame_no: int) -> list[str]:
    return valid_texts(read(y)) or (read_roi(y, hint) if hint is not None else [])


def strategies() -> dict[str, Strategy]:
    """Name -> decode(frame, last sighting or None, frame number). All start with the raw pass."""
    B = zxingcpp.Binarizer  # rows without "ROI" work on the whole frame
    return {
        "raw zxing-cpp (LocalAverage)": lambda y, _h, _n: valid_texts(read(y)),
        "+ GlobalHistogram binarizer": _first_pass_then(
            lambda y: valid_texts(read(y, binarizer=B.GlobalHistogram))),
        "+ FixedThreshold binarizer": _first_pass_then(
            lambda y: valid_texts(read(y, binarizer=B.FixedThreshold))),
        "+ percentile stretch": _first_pass_then(lambda y: valid_texts(read(stretch(y)))),
        "+ local normalisation r8": _first_pass_then(
            lambda y: valid_texts(read(local_normalise(y)))),
        "+ unsharp 3/200": _first_pass_then(lambda y: valid_texts(read(unsharp(y)))),
        "+ 2x bilinear": _first_pass_then(lambda y: valid_texts(
            read(upscale(y, 2, Image.Resampling.BILINEAR), try_downscale=False))),
        "+ 2x bicubic + unsharp 3/200": _first_pass_then(lambda y: valid_texts(
            read(unsharp(upscale(y)), try_downscale=False))),
        "+ Wiener 1.4/.03 + 2x bicubic": _first_pass_then(lambda y: valid_texts(
            read(WIENER[0].apply(y, 2), try_downscale=False))),
        "+ ROI zxing failed detections": lambda y, _h, _n: Recipe(every=0).decode(y),
        "+ ROI detector, unsharp 3/200": _roi_detector(UNSHARP[:1]),
        "+ ROI detector, unsharp x2": _roi_detector(UNSHARP),
        "+ ROI detector, Wiener 1.4/.03": _roi_detector(WIENER[:1]),
        "+ ROI detector, Wiener x2": _roi_detector(WIENER),
        "+ ROI last sighting, Wiener x2": _with_sighting,
    }


def _last_sighting(truth_corners: np.ndarray, index: int, shape: tuple[int, ...]) -> Box:
    """Where the code was a frame ago: moved up to 8% and resized up to 5% of its size."""
    rng = np.random.default_rng(seed_for("sighting", index))
    size = np.ptp(truth_corners, axis=0)
    centre = truth_corners.mean(axis=0) + rng.uniform(-0.08, 0.08, 2) * size
    moved = centre + (truth_corners - truth_corners.mean(axis=0)) * rng.uniform(0.95, 1.05)
    return Box.around(moved, 0.4, shape)


@dataclass
class Outcome:
    reads: dict[str, int]
    wrong: int
    code_t: list[float]
    empty_t: list[float]  # frames with no code: empty, or a person without one
    empty_ran: int  # empty frames on which a region was read again
    base_t: list[float]  # the raw pass alone on the same no-code frames, timed alongside


REPEAT = 2  # each frame's cost is the shortest of this many calls


def measure(decode: Strategy, frames: list[CodeFrame], empties: list[np.ndarray],
            ran: Callable[[], int] = lambda: 0, sighted: bool = True) -> Outcome:
    """Run ``decode`` over code frames (with a last sighting if ``sighted``), then empty ones."""
    out = Outcome({"hard": 0, "medium": 0}, 0, [], [], 0, [])
    with quiet_gc():
        for i, (y, truth) in enumerate(frames):
            hint = _last_sighting(truth.corners, i, y.shape) if sighted else None
            texts, dt = timed(lambda f, hint=hint, i=i: decode(f, hint, i), y, REPEAT)
            out.code_t.append(dt)
            out.reads[truth.difficulty] += truth.payload in texts
            out.wrong += sum(t != truth.payload for t in texts)
        for i, y in enumerate(empties):
            texts, dt = timed(lambda f, i=i: decode(f, None, i), y, REPEAT)
            out.empty_t.append(dt)
            out.base_t.append(timed(read, y, REPEAT)[1])  # paired: drift cancels in the ratio
            out.empty_ran += ran() > 0
            out.wrong += len(texts)
    return out


def _row(name: str, o: Outcome, n: int) -> list[object]:
    c50, c95 = ms(o.code_t)
    e50, e95 = ms(o.empty_t)
    ratio = f"{e50 / ms(o.base_t)[0]:.2f}x"
    return [name, pct(o.reads["hard"], n), pct(o.reads["medium"], n),
            pct(o.reads["hard"] + o.reads["medium"], 2 * n), o.wrong, c50, c95, e50, e95, ratio]


HEADERS = ["strategy", "hard", "medium", "hard+med", "wrong", "code med", "code p95",
           "empty med", "empty p95", "empty vs raw"]


def frame_sets(n: int, n_empty: int) -> tuple[list[CodeFrame], list[np.ndarray], list[np.ndarray]]:
    frames = code_frames("hard", SIZE, n) + code_frames("medium", SIZE, n)
    empties, busy = [], []
    for i in range(n_empty):
        rng = np.random.default_rng(seed_for("second-chance-empty", i))
        entrance = make_entrance(rng, SIZE, float(rng.uniform(70, 170)), float(rng.uniform(0, 0.5)))
        noise = float(rng.uniform(1, 8))
        empties.append(empty_scene(rng, SIZE, noise, entrance))
        busy.append(empty_scene(rng, SIZE, noise, entrance, person=True))
    return frames, empties, busy


def run(n: int, n_empty: int) -> None:
    frames, empties, busy = frame_sets(n, n_empty)
    no_code = empties + busy
    for y, _ in frames[:3]:
        read(y)
    print(f"Second chances at 640x480: {n} hard + {n} medium code frames; {n_empty} empty"
          " entrances, each once empty and once with a person (no code). ms per frame, first"
          f" pass included, shortest of {REPEAT} calls. 'empty' columns: the frames with no code;"
          " 'empty vs raw': their median against the raw pass timed alongside on the same frames.")
    rows = [_row(name, measure(decode, frames, no_code), n)
            for name, decode in strategies().items()]
    print(table(HEADERS, rows))
    print()

    print("Limiting the cost on frames with no code: SecondChance = raw pass (return_errors),"
          " then ROIs: zxing's failed detections, then the texture detector's region if its"
          " score reaches the gate, on frames numbered a multiple of N. For a code never seen"
          " before (no last sighting) unless said. 'ran' = share of no-code frames that read a"
          " region again.")
    rows = []
    for gate, every, sighted in ((0.0, 1, False), (1.0, 1, False), (1.5, 1, False),
                                 (2.0, 1, False), (3.0, 1, False), (1.5, 2, False),
                                 (1.5, 3, False), (1.5, 1, True)):
        sc = Recipe(gate=gate, every=every)
        o = measure(sc.decode, frames, no_code, ran=lambda s=sc: s.tried, sighted=sighted)
        name = f"gate {gate:.1f}, N={every}" + (" + last sighting" if sighted else "")
        rows.append(_row(name, o, n) + [pct(o.empty_ran, len(no_code))])
    print(table(HEADERS + ["ran"], rows))
    print()
    _psf_table(n)
    print()
    _score_table(frames, empties, busy)


def _psf_table(n: int) -> None:
    """The same hard scenes blurred by a defocus disk instead of a Gaussian: do the
    restorations, tuned for a Gaussian, still pay?"""
    rows = []
    for psf in ("gaussian", "disk"):
        frames = code_frames("hard", SIZE, n, psf=psf)
        for name in ("raw zxing-cpp (LocalAverage)", "+ ROI detector, unsharp x2",
                     "+ ROI detector, Wiener x2"):
            decode = strategies()[name]
            reads = sum(t.payload in decode(y, None, i) for i, (y, t) in enumerate(frames))
            rows.append([psf, name, pct(reads, n)])
    print(f"Blur shape: {n} hard frames at 640x480, Gaussian blur or a defocus disk of the same"
          " sigma (same scenes otherwise)")
    print(table(["psf", "strategy", "hard"], rows))


def _score_table(frames: list[CodeFrame], empties: list[np.ndarray],
                 busy: list[np.ndarray]) -> None:
    """Detector score on frames the raw pass missed, and on empty frames; its cost."""
    missed = [y for y, t in frames if t.payload not in valid_texts(read(y))]
    with quiet_gc():
        cand_t = [timed(find_candidate, y)[1] for y in empties + busy]
    scores = {
        "code frames raw missed": [find_candidate(y)[0] for y in missed],
        "empty": [find_candidate(y)[0] for y in empties],
        "empty with a person": [find_candidate(y)[0] for y in busy],
    }
    rows = []
    for name, s in scores.items():
        q = np.quantile(s, [0.05, 0.5, 0.95]) if s else [float("nan")] * 3
        rows.append([name, len(s), float(q[0]), float(q[1]), float(q[2]),
                     pct(sum(v >= 1.5 for v in s), len(s))])
    c50, c95 = ms(cand_t)
    print(f"Texture detector score (find_candidate: {c50:.2f} ms median, {c95:.2f} ms p95"
          " per frame)")
    print(table(["frames", "n", "p5", "median", "p95", ">= 1.5"], rows))


def stress(n: int) -> None:
    """Hunt for wrong payloads: every restoration on every frame (no gate), hard frames of
    another seed and frames with no code."""
    sc = Recipe(gate=0.0)
    wrong, reads, no_code = [], 0, 0
    for i in range(n):
        rng = np.random.default_rng(seed_for("stress", i))
        y, truth = make_scene(rng, "hard", SIZE)
        found = sc.decode(y, None, i)
        reads += truth.payload in found
        wrong += [t for t in found if t != truth.payload]
        entrance = make_entrance(rng, SIZE, float(rng.uniform(70, 170)), float(rng.uniform(0, 0.5)))
        for person in (False, True):
            y = empty_scene(rng, SIZE, float(rng.uniform(1, 8)), entrance, person=person)
            wrong += sc.decode(y, None, i)
            no_code += 1
    print(f"Stress, gate 0: {n} hard frames (seed 'stress'): {pct(reads, n)} read;"
          f" {no_code} frames with no code; wrong payloads: {len(wrong)} {wrong[:5]}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.second_chance",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="40 frames per difficulty")
    parser.add_argument("--stress", type=int, metavar="N",
                        help="only hunt for wrong payloads over N hard and 2N no-code frames")
    args = parser.parse_args(argv)
    if args.stress:
        stress(args.stress)
        return
    header("bench.second_chance: read rate beyond the raw decoder, and its cost",
           "bench.second_chance")
    if args.quick:
        run(n=40, n_empty=12)
    else:
        run(n=200, n_empty=40)


if __name__ == "__main__":
    main()
