"""How good a frame (or the code region in it) is for reading: sharpness and exposure, with a
suggestion for the [camera] keys. Shared by `gate test-camera` and `gate preview`."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# A step edge blurred by a Gaussian of sigma rises with a steepest slope of
# contrast / (sigma * sqrt(2 pi)); the steepest slopes of a region give its blur back.
SQRT_2PI = math.sqrt(2 * math.pi)
MIN_CONTRAST = 24       # grey levels: below this the region holds no edges to measure
BLUR_PER_MODULE = 0.35  # blur sigma / module size above which reads start failing
CLIPPED = 250           # a grey level at or above this is saturated


@dataclass(frozen=True)
class Quality:
    """Sharpness and exposure of a region (x0, y0, x1, y1) of a luma frame."""

    region: tuple[int, int, int, int]
    blur_px: float | None      # estimated blur sigma in pixels; None: too flat to tell
    mean: float                # mean grey level
    contrast: float            # 95th minus 5th percentile
    clipped: float             # share of pixels at or above CLIPPED
    dark: float                # share of pixels at or below 5

    def sharpness(self) -> float | None:
        """1 / blur sigma: higher is sharper (about 2.5 at the pixel limit)."""
        return None if self.blur_px is None else round(1.0 / max(self.blur_px, 0.1), 2)


def region_of(corners: Sequence[tuple[float, float]], shape: tuple[int, ...],
              margin: float = 0.15) -> tuple[int, int, int, int]:
    """The bounding box of ``corners`` grown by ``margin`` of its size, clipped to the frame."""
    xs = [float(x) for x, _ in corners]
    ys = [float(y) for _, y in corners]
    mx, my = margin * (max(xs) - min(xs)), margin * (max(ys) - min(ys))
    h, w = shape[:2]
    return (max(0, int(min(xs) - mx)), max(0, int(min(ys) - my)),
            min(w, int(max(xs) + mx) + 1), min(h, int(max(ys) + my) + 1))


def measure_quality(luma: np.ndarray, region: tuple[int, int, int, int] | None = None) -> Quality:
    """Blur and exposure of ``region`` (default the whole frame)."""
    h, w = luma.shape
    x0, y0, x1, y1 = region or (0, 0, w, h)
    a = luma[y0:y1, x0:x1].astype(np.float32)
    if a.size == 0 or min(a.shape) < 3:
        return Quality((x0, y0, x1, y1), None, 0.0, 0.0, 0.0, 0.0)
    p5, p95 = np.percentile(a, [5, 95])
    contrast = float(p95 - p5)
    blur: float | None = None
    if contrast >= MIN_CONTRAST:
        gx = np.abs(a[:, 2:] - a[:, :-2]) / 2  # central differences
        gy = np.abs(a[2:, :] - a[:-2, :]) / 2
        steep = float(np.percentile(np.concatenate([gx.ravel(), gy.ravel()]), 99.5))
        # Central differences flatten a sharp step to half its height per pixel: the slope
        # cannot exceed contrast / 2, which reads as sigma ~0.8; report no less than that.
        blur = round(max(0.8, contrast / (SQRT_2PI * max(steep, 1e-3))), 2)
    n = a.size
    return Quality((x0, y0, x1, y1), blur, round(float(a.mean()), 1), round(contrast, 1),
                   round(float(np.count_nonzero(a >= CLIPPED)) / n, 4),
                   round(float(np.count_nonzero(a <= 5)) / n, 4))


def suggest(q: Quality, px_per_module: float | None) -> list[str]:
    """What to change, in [camera] keys, for a code region of this quality (empty: fine)."""
    tips = []
    if q.clipped > 0.05:
        tips.append("the code is over-exposed (a phone screen is brighter than the entrance):"
                    " set [camera] metering = \"spot\" and exposure_value = -1.0, or lower it"
                    " further")
    elif q.mean < 50 or q.contrast < 40:
        tips.append("the code is dark or flat: raise [camera] exposure_value (+1.0), or add"
                    " light; with paper passes prefer metering = \"centre\"")
    if q.blur_px is not None and px_per_module:
        if q.blur_px / px_per_module > BLUR_PER_MODULE:
            tips.append(f"the code is blurred ({q.blur_px:.1f} px over {px_per_module:.1f} px"
                        " modules): set [camera] lens_position to the presentation distance"
                        " (dioptres = 1 / metres: 6.7 at 15 cm) with autofocus = \"manual\","
                        " or ask visitors to hold still")
    if px_per_module is not None and px_per_module < 2.0:
        tips.append("the code is small at lores: set [camera] main_size (full-resolution"
                    " second looks) or mount the camera closer")
    return tips
