"""A set of real photographs of QR codes, with the payload each must read as.

Nothing here is committed with the gate: the set is a directory the bench is pointed at
(``--photos DIR`` or ``GATE_BENCH_PHOTOS``). Each image (PNG, JPEG, WebP) counts when a
``.txt`` file of the same stem sits beside it, holding the expected payload, the layout of
zxing-cpp's test/samples/qrcode-*/ (Apache-2.0; see README "Real photos" for how to get it).
Subdirectories are walked, and each is reported as a group of its own.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

ENV = "GATE_BENCH_PHOTOS"
SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
MAX_SIDE = 4096  # a photo larger than this is not a frame any gate camera gives


@dataclass(frozen=True)
class Photo:
    group: str  # the subdirectory, relative to the set's root
    name: str
    luma: np.ndarray = None  # type: ignore[assignment]
    payload: str = ""


def photo_dir(arg: str | None) -> Path | None:
    """The set's root from ``--photos`` or the environment, or None."""
    value = arg or os.environ.get(ENV)
    return Path(value) if value else None


def load_photos(root: Path) -> list[Photo]:
    """Every image with an expected payload under ``root``, as luma, sorted by path."""
    out = []
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() not in SUFFIXES:
            continue
        expected = path.with_suffix(".txt")
        if not expected.is_file():
            continue  # zxing-cpp keeps several codes per image in other files: not counted
        with Image.open(path) as opened:
            luma = np.asarray(ImageOps.exif_transpose(opened).convert("L"))
        if max(luma.shape) > MAX_SIDE:
            continue
        payload = expected.read_bytes().decode("utf-8", "replace")
        group = str(path.parent.relative_to(root)) or "."
        out.append(Photo(group, path.name, np.ascontiguousarray(luma), payload))
    return out
