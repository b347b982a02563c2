"""Second chances for a frame the decoder's first pass could not read.

A QR code held up at the door is often small (2-3.5 pixels per module at 640x480) and blurred
(a fixed-focus module at hand-held range); zxing-cpp's first pass reads about a third of such
frames. Restoring the whole frame would cost ten full decodes, so only a few regions of
interest are read again, each cropped, Wiener-deconvolved and upscaled 2x bicubically:

1. where a code was last read, if it still looks like a code there (it is probably the same
   code, a little moved or blurred);
2. where the first pass found a symbol it could not decode (zxing-cpp already knows where);
3. the most code-like region of the frame by a cheap texture measure (`Texture`), when its
   score reaches ``min_score``: QR modules make edges run densely both ways, which walls,
   text, door frames and floor grout do not.

A restored crop is read by the same decoder, which returns only symbols whose Reed-Solomon
error correction checks out, and only QR Code model 2 (see decode.py): no wrong payload in
the benchmark's runs, stress run included. Measured on bench/second_chance.py: hard+medium
frames at 640x480 go from 65% to 90% read. On a frame with no code the texture measure costs
about 0.3 ms at 640x480 (a raw decode of such a frame 0.4-1.5 ms), and a region is read again
on a few percent of them.

With a main stream (picamera2's full-resolution stream beside the lores one), each region is
first read in the main stream's Y plane at the same place: three times the pixels per module
at 1920x1440 over 640x480, which no restoration of lores pixels can make up for a small code.
bench/readrate.py measured it: with the lens focused at the presentation distance the read
limit goes from about 1.5-2 to about 1-1.5 pixels per module at lores (a code read from
farther away); a defocused lens gains nothing from it (the optics are then the limit).

Only numpy and Pillow here; the reading itself is a callable the decoder passes in.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from PIL import Image, ImageChops

Point = tuple[int, int]
Corners = tuple[Point, ...]
Found = tuple[bytes, Corners]            # a payload and its corners
Reader = Callable[[np.ndarray], list[Found]]  # reads an image: decoded symbols only

BLOCK = 8          # texture map cell, pixels
MIN_SIDE = 16      # a region narrower than this holds no readable code
SIGHTING_MARGIN = 0.4   # a last sighting's box grows by this much of its size each side
FAILED_MARGIN = 0.35    # so does a failed detection's


@dataclass(frozen=True)
class Box:
    """A region of interest in frame pixels, x1/y1 exclusive."""

    x0: int
    y0: int
    x1: int
    y1: int

    @classmethod
    def around(cls, points: np.ndarray | Sequence[Point], margin: float,
               shape: tuple[int, ...]) -> Box:
        """The bounding box of ``points`` grown by ``margin`` of its size, clipped to a frame
        of ``shape`` (rows, columns)."""
        pts = np.asarray(points, dtype=float).reshape(-1, 2)
        (x0, y0), (x1, y1) = pts.min(axis=0), pts.max(axis=0)
        mx, my = margin * (x1 - x0), margin * (y1 - y0)
        return cls(max(0, int(x0 - mx)), max(0, int(y0 - my)),
                   min(shape[1], int(x1 + mx) + 1), min(shape[0], int(y1 + my) + 1))

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    @property
    def area(self) -> int:
        return max(0, self.width) * max(0, self.height)

    def overlap(self, other: Box) -> float:
        """Intersection over union."""
        w = min(self.x1, other.x1) - max(self.x0, other.x0)
        h = min(self.y1, other.y1) - max(self.y0, other.y0)
        if w <= 0 or h <= 0:
            return 0.0
        inter = w * h
        return inter / (self.area + other.area - inter)

    def to_frame(self, corners: Corners, factor: int) -> Corners:
        """Corners read in this box's crop upscaled by ``factor``, in frame pixels."""
        return tuple((self.x0 + round(x / factor), self.y0 + round(y / factor))
                     for x, y in corners)


# ----------------------------------------------------------------------------- restoration

def _fast_length(n: int) -> int:
    """The next length FFTs do quickly: a product of 2, 3 and 5."""
    while True:
        m = n
        for p in (2, 3, 5):
            while m % p == 0:
                m //= p
        if m == 1:
            return n
        n += 1


def deconvolve(y: np.ndarray, sigma: float = 1.4, noise: float = 0.03) -> np.ndarray:
    """Wiener deconvolution for a Gaussian blur of ``sigma``; ``noise`` regularises.

    The frequency response is G / (G^2 + noise): it undoes the blur where the blur left signal
    above the noise and leaves the rest alone. Done with a real FFT over the reflected crop
    (no wrap-around edges); a 160x160 crop costs about a millisecond.
    """
    pad = int(3 * sigma) + 4
    h, w = y.shape
    a = np.pad(y.astype(np.float32), pad, mode="reflect")
    fh, fw = _fast_length(a.shape[0]), _fast_length(a.shape[1])
    fy = np.fft.fftfreq(fh).astype(np.float32)[:, None]
    fx = np.fft.rfftfreq(fw).astype(np.float32)[None, :]
    g = np.exp(-2.0 * (math.pi * sigma) ** 2 * (fx * fx + fy * fy))
    out = np.fft.irfft2(np.fft.rfft2(a, (fh, fw)) * (g / (g * g + noise)), (fh, fw))
    return np.clip(out[pad:pad + h, pad:pad + w] + 0.5, 0, 255).astype(np.uint8)


class Restoration(Protocol):
    """Turns a crop into an image worth reading again, ``factor`` times larger."""

    def apply(self, crop: np.ndarray, factor: int) -> np.ndarray: ...


@dataclass(frozen=True)
class Wiener:
    """Wiener deconvolution (``sigma``, ``noise``), then a bicubic upscale."""

    sigma: float = 1.4
    noise: float = 0.03

    def apply(self, crop: np.ndarray, factor: int) -> np.ndarray:
        img = Image.fromarray(deconvolve(crop, self.sigma, self.noise))
        return np.asarray(img.resize((img.width * factor, img.height * factor),
                                     Image.Resampling.BICUBIC))


# Tuned on frames of another seed than the benchmark's, Gaussian and disk blur alike: each
# Wiener step rescued more than an unsharp mask at half the cost, and the pair (a moderate,
# then a stronger restoration) most of what any three of eight candidates did.
WIENER_CHAIN: tuple[Restoration, ...] = (Wiener(1.4, 0.03), Wiener(1.4, 0.01))


def read_roi(reader: Reader, luma: np.ndarray, box: Box,
             chain: Sequence[Restoration] = WIENER_CHAIN, factor: int = 2) -> list[Found]:
    """Crop, restore and upscale, read; each restoration in turn until one reads.

    Small modules gain most from the upscale (the binarizer gets more than two pixels a
    module), blurred ones from the restoration; both are cheap on a crop and dear on a frame.
    Corners come back in frame pixels.
    """
    if box.width < MIN_SIDE or box.height < MIN_SIDE:
        return []
    crop = np.ascontiguousarray(luma[box.y0:box.y1, box.x0:box.x1])
    for step in chain:
        found = reader(step.apply(crop, factor))
        if found:
            return [(data, box.to_frame(corners, factor)) for data, corners in found]
    return []


def read_main(reader: Reader, main: np.ndarray, lores_shape: tuple[int, ...],
              box: Box) -> list[Found]:
    """Read the region ``box`` (lores pixels) in the main stream's plane: a view of the crop,
    never a copy of the frame. Corners come back in lores pixels."""
    fy, fx = main.shape[0] / lores_shape[0], main.shape[1] / lores_shape[1]
    x0, y0 = int(box.x0 * fx), int(box.y0 * fy)
    crop = main[y0:int(box.y1 * fy), x0:int(box.x1 * fx)]
    if crop.shape[0] < MIN_SIDE or crop.shape[1] < MIN_SIDE:
        return []
    return [(data, tuple((round((x0 + x) / fx), round((y0 + y) / fy)) for x, y in corners))
            for data, corners in reader(crop)]


# ----------------------------------------------------------------------------- detector

def texture_map(y: np.ndarray) -> np.ndarray:
    """Per 8x8 block, the weaker of horizontal and vertical gradient energy (mean |diff|).

    Computed on a 2x2-binned frame, all in Pillow (about 0.15 ms at 640x480). It is high only
    where edges run both ways densely, as in a QR symbol; text, door frames and floor grout
    have edges mostly one way. Returns uint8, one value per block.
    """
    g = Image.fromarray(np.ascontiguousarray(y)).reduce(2)
    cell = BLOCK // 2
    w, h = (g.width - 1) // cell * cell, (g.height - 1) // cell * cell
    here = g.crop((0, 0, w, h))
    ex = ImageChops.difference(here, g.crop((1, 0, w + 1, h))).reduce(cell)
    ey = ImageChops.difference(here, g.crop((0, 1, w, h + 1))).reduce(cell)
    return np.asarray(ImageChops.darker(ex, ey))


def _window_sums(a: np.ndarray, k: int) -> np.ndarray:
    """Sums over every k x k square of ``a`` (integers), by a summed-area table."""
    c = np.zeros((a.shape[0] + 1, a.shape[1] + 1), np.int32)
    np.cumsum(a, axis=0, dtype=np.int32, out=c[1:, 1:])
    np.cumsum(c[1:, 1:], axis=1, out=c[1:, 1:])
    return c[k:, k:] - c[:-k, k:] - c[k:, :-k] + c[:-k, :-k]


class Texture:
    """A frame's texture map, scored in ``window`` x ``window``-block squares.

    A square's score is how far its mean texture stands above the frame's median (noise and
    flat wall), relative to that median: codes the first pass missed score 1.8 and more (5th
    percentile on the benchmark's hard frames), empty entrances 0.2-0.9, a person walking
    through sometimes 1.5.
    """

    def __init__(self, y: np.ndarray, window: int = 6) -> None:
        self.tex = texture_map(y)
        self.window = window
        self.shape = y.shape
        self.floor = float(np.median(self.tex)) if self.tex.size else 0.0
        rows, cols = self.tex.shape
        self.win = (_window_sums(self.tex, window) / (window * window)
                    if rows >= window and cols >= window else np.zeros((0, 0), np.float32))

    def _score(self, peak: float) -> float:
        return (peak - self.floor) / (self.floor + 1.0)

    def score(self, box: Box) -> float:
        """The best square's score among those starting inside ``box``."""
        if self.win.size == 0:
            return 0.0
        i0, j0 = box.y0 // BLOCK, box.x0 // BLOCK
        i1 = max(i0 + 1, (box.y1 // BLOCK) - self.window + 1)
        j1 = max(j0 + 1, (box.x1 // BLOCK) - self.window + 1)
        sub = self.win[i0:i1, j0:j1]
        return self._score(float(sub.max())) if sub.size else 0.0

    def candidate(self, reach: int = 12) -> tuple[float, Box]:
        """The most code-like region: (score, box). The box grows from the best square to the
        blocks within ``reach`` blocks whose texture is a third of the way from the median
        to the square's."""
        h, w = self.shape[:2]
        if self.win.size == 0:
            return 0.0, Box(0, 0, w, h)
        window, tex, floor = self.window, self.tex, self.floor
        i, j = (int(v) for v in np.unravel_index(int(np.argmax(self.win)), self.win.shape))
        peak = float(self.win[i, j])
        ci, cj = i + window // 2, j + window // 2
        i0, j0 = max(0, ci - reach), max(0, cj - reach)
        near = tex[i0:ci + reach, j0:cj + reach] > floor + 0.35 * (peak - floor)
        rows, cols = np.flatnonzero(near.any(axis=1)), np.flatnonzero(near.any(axis=0))
        if rows.size == 0:
            rows, cols = np.array([ci - i0]), np.array([cj - j0])
        pad = 2
        box = Box(int(max(0, (j0 + cols[0] - pad) * BLOCK)),
                  int(max(0, (i0 + rows[0] - pad) * BLOCK)),
                  int(min(w, (j0 + cols[-1] + 1 + pad) * BLOCK)),
                  int(min(h, (i0 + rows[-1] + 1 + pad) * BLOCK)))
        return self._score(peak), box


def find_candidate(y: np.ndarray, window: int = 6, reach: int = 12) -> tuple[float, Box]:
    """The most code-like region of a frame and its score (see `Texture`)."""
    return Texture(y, window).candidate(reach)


# ----------------------------------------------------------------------------- the policy

class SecondChance:
    """Which regions a missed frame gets read again in, and the memory that needs.

    The decoder calls `saw` with what each frame read and `rescue` on a frame it read nothing
    in. A last sighting is kept for ``sighting_decodes`` decodes that read nothing, then
    forgotten (so an empty entrance does not pay for it). ``runs`` counts frames on which at
    least one region was read again, ``reads`` those on which that found a code; ``tried`` is
    the number of regions the last `rescue` read.
    """

    def __init__(self, reader: Reader, min_score: float = 1.5,
                 chain: Sequence[Restoration] = WIENER_CHAIN, factor: int = 2,
                 sighting_decodes: int = 15) -> None:
        self.reader = reader
        self.min_score = min_score
        self.chain = tuple(chain)
        self.factor = factor
        self.sighting_decodes = sighting_decodes
        self.last_seen: Box | None = None
        self._misses = 0
        self.runs = 0
        self.reads = 0
        self.main_reads = 0
        self.tried = 0

    def saw(self, found: Sequence[Corners], shape: tuple[int, ...]) -> None:
        """What a frame read (possibly nothing): remember where, or age the memory."""
        located = [c for c in found if c]
        if located:
            self.last_seen = Box.around([p for c in located[:1] for p in c], SIGHTING_MARGIN,
                                        shape)
            self._misses = 0
            return
        self._misses += 1
        if self._misses > self.sighting_decodes:
            self.last_seen = None

    def regions(self, luma: np.ndarray, failed: Sequence[Corners],
                detector: bool = True) -> list[Box]:
        """The regions to read again, in order, without near-duplicates (IoU > 0.6).

        Failed detections always; the last sighting and the detector's region only where the
        texture looks like a code (score >= ``min_score``), so that an entrance the visitor
        has left does not pay for a region that held a code a moment ago.
        """
        boxes = [Box.around(c, FAILED_MARGIN, luma.shape) for c in failed if len(c) >= 3]
        if self.last_seen is not None or detector:
            texture = Texture(luma)
            if self.last_seen is not None and texture.score(self.last_seen) >= self.min_score:
                boxes.insert(0, self.last_seen)
            if detector:
                score, box = texture.candidate()
                if score >= self.min_score:
                    boxes.append(box)
        kept: list[Box] = []
        for box in boxes:
            if box.width >= MIN_SIDE and box.height >= MIN_SIDE and \
                    all(box.overlap(k) <= 0.6 for k in kept):
                kept.append(box)
        return kept

    def rescue(self, luma: np.ndarray, failed: Sequence[Corners] = (),
               detector: bool = True, main: np.ndarray | None = None,
               main_reader: Reader | None = None) -> list[Found]:
        """Read the regions in turn until one gives a code: each first in ``main`` (the main
        stream's Y plane, by ``main_reader``) if given, then restored from lores. Updates the
        counters and memory."""
        self.tried = 0
        found: list[Found] = []
        for box in self.regions(luma, failed, detector):
            self.tried += 1
            if main is not None:
                found = read_main(main_reader or self.reader, main, luma.shape, box)
                self.main_reads += bool(found)
            if not found:
                found = read_roi(self.reader, luma, box, self.chain, self.factor)
            if found:
                break
        self.runs += self.tried > 0
        self.reads += bool(found)
        self.saw([corners for _, corners in found], luma.shape)
        return found
