"""Idle frames: skip decoding a frame that looks like the last decoded one, decode every Nth.

    python -m bench.idle            # 8 entrances x 60 frames per size, 150 code appearances
    python -m bench.idle --quick    # 3 x 30, 30 appearances: a few seconds

A skipped frame means "the same as the last decoded frame", not "no code": a code held
still in front of the camera is skipped too, so the scanner has to carry the last decoded
result over (or its repeat guard would see the code leave and come back).
"""

from __future__ import annotations

import argparse

import numpy as np
import zxingcpp
from PIL import Image

from bench.common import header, ms, pct, quiet_gc, seed_for, table, timed
from bench.scenes import (
    DIFFICULTIES,
    SIZES,
    empty_sequence,
    make_entrance,
    random_payload,
    render_scene,
    sample_params,
)
from gate.scan.decode import qr_formats
from gate.scan.idle import IdleDetector

QR = qr_formats(zxingcpp)  # QR Code model 2 only, as the gate reads (see gate/scan/decode.py)


class Variant(IdleDetector):
    """gate.scan.idle.IdleDetector ("rows": two rows of each cell) with the thumbnails it was
    chosen over: "box" (Pillow's reduce: cell means, which average sensor noise away) and
    "stride" (one pixel per cell: cheapest, noisiest, needs a higher level)."""

    def __init__(self, level: int = 8, blocks: int = 2, full_every: int = 10, factor: int = 8,
                 sampling: str = "box") -> None:
        super().__init__(level, blocks, full_every, factor)
        self.sampling = sampling

    def thumbnail(self, y: np.ndarray) -> np.ndarray:
        f = self.factor
        if self.sampling == "stride":
            return y[f // 2::f, f // 2::f].astype(np.int16)
        if self.sampling == "box":
            return np.asarray(Image.fromarray(y).reduce(f), np.int16)
        return super().thumbnail(y)


VARIANTS = {
    "box 1/8, level 8": dict(level=8, blocks=2, factor=8, sampling="box"),
    "rows 1/8, level 12": dict(level=12, blocks=3, factor=8, sampling="rows"),  # the gate's
    "stride 1/8, level 40": dict(level=40, blocks=3, factor=8, sampling="stride"),
}


def _raw(y: np.ndarray) -> list[str]:
    return [b.text for b in zxingcpp.read_barcodes(y, formats=QR)]


def cost_rows(size_name: str, scenes: int, length: int) -> list[list[object]]:
    size = SIZES[size_name]
    seqs = []
    for i in range(scenes):
        rng = np.random.default_rng(seed_for("idle", size, i))
        ent = make_entrance(rng, size, float(rng.uniform(70, 170)), float(rng.uniform(0, 0.5)))
        noise = float(rng.uniform(1, 8))
        seqs.append(empty_sequence(rng, size, length, noise, entrance=ent))
        seqs.append(empty_sequence(rng, size, length, noise, static=True, entrance=ent))
    frames = [y for seq in seqs for y in seq]
    for y in frames[:3]:
        _raw(y)
    with quiet_gc():
        full_t = [timed(_raw, y, 3)[1] for y in frames]
    f50, f95 = ms(full_t)
    rows = []
    for name, options in VARIANTS.items():
        for every in (10, 30):
            check_t, loop_t, decoded, extra = [], [], 0, 0
            with quiet_gc():
                for seq in seqs:
                    det = Variant(full_every=every, **options)
                    for y in seq:
                        go, cost = timed(det.needs_decode, y)
                        if go:
                            cost += timed(_raw, y, 3)[1]
                            decoded += 1
                            extra += det.changed
                        else:
                            check_t.append(cost)
                        loop_t.append(cost)
            c50, c95 = ms(check_t)
            rows.append([size_name, name, every, f50, f95, c50, c95, f"{c50 / f50:.2f}x",
                         f"{np.mean(loop_t) / np.mean(full_t):.2f}x", pct(decoded, len(frames)),
                         extra])
    return rows


def appearance_rows(trials: int, every: int = 10) -> list[list[object]]:
    """A code appears in an empty entrance (no person: only the phone or paper changes).

    Six empty frames with the code frame's own blur and noise, then the code frame. 'first
    frame' = the detector asked for a decode on the code frame; 'missed' = frames raw zxing
    reads but the detector skipped (they wait for the periodic decode, at most N frames).
    """
    size = SIZES["640x480"]
    rows = []
    for name, options in VARIANTS.items():
        flagged, readable, missed = {d: 0 for d in DIFFICULTIES}, {d: 0 for d in DIFFICULTIES}, 0
        counts = {d: 0 for d in DIFFICULTIES}
        for i in range(trials):
            d = DIFFICULTIES[i % 3]
            rng = np.random.default_rng(seed_for("appear", i))
            params = sample_params(rng, d)
            ent = make_entrance(rng, size, params.ambient, params.light)
            empties = empty_sequence(rng, size, 6, params.noise_sigma, entrance=ent,
                                     blur=params.blur_sigma)
            payload = random_payload(rng)
            frame, _ = render_scene(rng, params, size, payload, ent, person=False)
            det = Variant(full_every=every, **options)
            for y in empties:
                det.needs_decode(y)
            go = det.needs_decode(frame)
            reads = payload in _raw(frame)
            counts[d] += 1
            flagged[d] += go
            readable[d] += reads
            missed += reads and not go
        rows.append([name] + [pct(flagged[d], counts[d]) for d in DIFFICULTIES] + [missed])
    return rows


def run(scenes: int, length: int, trials: int) -> None:
    rows = []
    for size_name in SIZES:
        rows += cost_rows(size_name, scenes, length)
    print(f"Idle-frame check vs a full decode (raw zxing-cpp) on empty entrances: {scenes} scenes,"
          f" each {length} noisy frames (noise 1-8, 0.5% flicker) and {length} identical frames."
          " ms per frame; 'check' is timed on the frames it skipped; 'loop' is the mean cost of"
          " check + decode-when-needed over all frames against decoding every frame;"
          " 'false triggers' = frames decoded because the check saw a change that was only"
          " noise or flicker.")
    print(table(["size", "detector", "N", "full med", "full p95", "check med", "check p95",
                 "check/full", "loop/full", "decoded", "false triggers"], rows))
    print()
    print(f"A code appears ({trials} trials at 640x480, easy/medium/hard in turn, N=10):"
          " share of first code frames sent to the decoder, and readable code frames skipped")
    print(table(["detector", *(f"{d} flagged" for d in DIFFICULTIES), "missed"],
                appearance_rows(trials)))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.idle",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer scenes and trials")
    args = parser.parse_args(argv)
    header("bench.idle: idle-frame detector cost and safety", "bench.idle")
    if args.quick:
        run(scenes=3, length=30, trials=30)
    else:
        run(scenes=8, length=60, trials=150)


if __name__ == "__main__":
    main()
