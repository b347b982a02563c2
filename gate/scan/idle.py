"""Idle frames: a frame that looks like the last decoded one need not be decoded again.

A gate's camera mostly watches an empty entrance. Comparing a 1/8 thumbnail of each frame
with the last decoded frame's costs about a twentieth of a full decode (bench/idle.py), so
the scanner decodes only frames that changed, plus every ``full_every``-th frame whatever
the comparison says, so that nothing it misses stays unread for long.

A skipped frame means "the same as the last decoded frame", not "no code": a code held still
in front of the camera is skipped too, and the scanner carries the last decoded codes over
(otherwise its repeat guard would see the code leave and come back, and open the door again).
"""

from __future__ import annotations

import numpy as np
from PIL import Image


class IdleDetector:
    """Decides, frame by frame, whether a frame needs decoding.

    The thumbnail holds the mean of two of each 8x8 cell's rows (Pillow never reads the
    other six: a quarter of the memory traffic of a full box filter, half its noise
    averaging). A frame needs decoding when at least ``blocks`` thumbnail cells moved by more
    than ``level`` grey levels since the last decoded frame, when ``full_every`` frames went
    by without a decode, or when its size differs. ``changed`` says whether the last frame
    differed from the reference (not only its turn for a periodic decode).
    """

    def __init__(self, level: int = 12, blocks: int = 3, full_every: int = 10,
                 factor: int = 8) -> None:
        if full_every < 1 or factor < 2 or factor % 2:
            raise ValueError("full_every must be >= 1 and factor an even number >= 2")
        self.level, self.blocks, self.full_every, self.factor = level, blocks, full_every, factor
        self.reference: np.ndarray | None = None
        self.since = 0
        self.changed = False

    def thumbnail(self, y: np.ndarray) -> np.ndarray:
        """Cell means over two rows of each ``factor`` x ``factor`` cell, as int16."""
        f, step = self.factor, self.factor // 2
        y = np.ascontiguousarray(y)
        rows = y.shape[0] // step
        img = Image.frombuffer("L", (y.shape[1], rows), y, "raw", "L", y.shape[1] * step, 1)
        return np.asarray(img.reduce((f, 2)), np.int16)

    def needs_decode(self, y: np.ndarray) -> bool:
        """True if ``y`` must be decoded; the caller then decodes it (it becomes the reference)."""
        thumb = self.thumbnail(y)
        self.since += 1
        ref = self.reference
        if ref is None or ref.shape != thumb.shape:
            self.changed = True
        else:
            diff = np.abs(thumb - ref)
            self.changed = bool(np.count_nonzero(diff > self.level) >= self.blocks)
        if self.changed or self.since >= self.full_every:
            self.reference, self.since = thumb, 0
            return True
        return False

    def reset(self) -> None:
        """Forget the reference: the next frame is decoded."""
        self.reference, self.since, self.changed = None, 0, False
