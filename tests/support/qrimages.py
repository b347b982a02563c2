"""Real QR images for the tests and the demo: segno draws the code, numpy places it in a frame."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import segno
from PIL import Image


def qr_modules(payload: str | bytes, border: int = 4) -> np.ndarray:
    """The code as a boolean array, True = dark module, with a quiet zone of `border`."""
    qr = segno.make_qr(payload, error="m")
    return np.array(qr.matrix, dtype=bool) if border == 0 else np.pad(
        np.array(qr.matrix, dtype=bool), border)


def qr_frame(payloads: list[str | bytes] | str | bytes = (), size: tuple[int, int] = (640, 480),
             module_px: int = 6, background: int = 200) -> np.ndarray:
    """A grey luma frame with each payload's code drawn side by side, left to right."""
    if isinstance(payloads, (str, bytes)):
        payloads = [payloads]
    w, h = size
    frame = np.full((h, w), background, dtype=np.uint8)
    x = 20
    for payload in payloads:
        mods = qr_modules(payload)
        img = np.where(np.kron(mods, np.ones((module_px, module_px), dtype=bool)), 0, 255)
        ih, iw = img.shape
        if x + iw > w or ih > h:
            raise ValueError("codes do not fit in the frame; lower module_px")
        y = (h - ih) // 2
        frame[y:y + ih, x:x + iw] = img
        x += iw + 20
    return frame


def write_png(path: Path, luma: np.ndarray) -> Path:
    Image.fromarray(luma, mode="L").save(path)
    return path


def write_frames(directory: Path, sequence: list[list[str] | str | None],
                 size: tuple[int, int] = (640, 480)) -> list[Path]:
    """One PNG per entry: None is an empty scene, a string or list the codes in view."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, entry in enumerate(sequence):
        luma = qr_frame([] if entry is None else entry, size=size)
        paths.append(write_png(directory / f"frame-{i:04d}.png", luma))
    return paths


DEMO_SEQUENCE: list[list[str] | str | None] = (
    [None] * 5 + ["DEMO-ALICE-0001"] * 6 + [None] * 8 + ["DEMO-UNKNOWN-9999"] * 4 + [None] * 8
    + ["DEMO-BOB-EXPIRED"] * 4 + [None] * 8 + ["DEMO-CAROL-0002"] * 4 + [None] * 36)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="write the demo frames")
    parser.add_argument("directory", type=Path)
    args = parser.parse_args()
    for old in args.directory.glob("frame-*.png"):
        old.unlink()
    print(len(write_frames(args.directory, DEMO_SEQUENCE)), "frames written")
