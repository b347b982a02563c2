"""Shared benchmark plumbing: seeded frame sets, timing, plain-text tables."""

from __future__ import annotations

import gc
import os
import platform
import sys
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from importlib import metadata
from typing import Any

import numpy as np

from bench.scenes import (
    SceneTruth,
    empty_sequence,
    make_entrance,
    make_scene,
    random_payload,
    render_scene,
    sample_params,
)

CodeFrame = tuple[np.ndarray, SceneTruth]


def seed_for(*parts: object) -> int:
    """A stable seed from a name: the same frames on every run and every machine."""
    return zlib.crc32("/".join(map(str, parts)).encode())


def code_frames(difficulty: str, size: tuple[int, int], n: int,
                psf: str = "gaussian") -> list[CodeFrame]:
    """``n`` code frames of one difficulty; frame i is the same for any n >= i.

    ``psf="disk"`` gives the same scenes blurred by a defocus disk instead of a Gaussian.
    """
    out = []
    for i in range(n):
        rng = np.random.default_rng(seed_for("code", difficulty, size, i))
        if psf == "gaussian":
            out.append(make_scene(rng, difficulty, size))
            continue
        params = replace(sample_params(rng, difficulty), psf=psf)  # make_scene's draws, in order
        frame, truth = render_scene(rng, params, size, random_payload(rng))
        out.append((frame, replace(truth, difficulty=difficulty)))
    return out


def empty_frames(size: tuple[int, int], scenes: int, per_scene: int) -> list[np.ndarray]:
    """Empty entrances, ``per_scene`` consecutive noisy frames of each (sensor noise 1-6)."""
    out: list[np.ndarray] = []
    for i in range(scenes):
        rng = np.random.default_rng(seed_for("empty", size, i))
        entrance = make_entrance(rng, size, float(rng.uniform(70, 170)), float(rng.uniform(0, 0.5)))
        out += empty_sequence(rng, size, per_scene, float(rng.uniform(1, 6)), entrance=entrance)
    return out


def timed(fn: Callable[[Any], Any], arg: Any, repeat: int = 1) -> tuple[Any, float]:
    """Call ``fn(arg)`` ``repeat`` times; return the last result and the shortest wall time
    in seconds (the least disturbed by other processes on a shared machine)."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn(arg)
        best = min(best, time.perf_counter() - t0)
    return result, best


class quiet_gc:
    """No garbage collection pauses inside a timed loop."""

    def __enter__(self) -> None:
        gc.collect()
        gc.disable()

    def __exit__(self, *exc: object) -> None:
        gc.enable()


@dataclass
class Measured:
    """One decoder over a frame set: per-frame times, reads per difficulty, wrong payloads."""

    code_s: list[float]
    empty_s: list[float]
    reads: dict[str, int]
    wrong: int


def measure_decoder(decode: Callable[[np.ndarray], list[str]],
                    sets: dict[str, list[CodeFrame]], empties: list[np.ndarray],
                    repeat: int) -> Measured:
    """Time `decode` (returning payload texts) on every code and empty frame, the shortest of
    `repeat` calls each, and count true reads per difficulty and wrong payloads."""
    for y in empties[:3]:  # warm caches and lazy initialisation
        decode(y)
    m = Measured([], [], {}, 0)
    with quiet_gc():
        for d, frames in sets.items():
            m.reads[d] = 0
            for y, truth in frames:
                texts, dt = timed(decode, y, repeat)
                m.code_s.append(dt)
                m.reads[d] += truth.payload in texts
                m.wrong += sum(t != truth.payload for t in texts)
        for y in empties:
            texts, dt = timed(decode, y, repeat)
            m.empty_s.append(dt)
            m.wrong += len(texts)
    return m


def ms(seconds: Sequence[float]) -> tuple[float, float]:
    """Median and 95th percentile, in milliseconds."""
    a = np.asarray(seconds) * 1e3
    return float(np.median(a)), float(np.percentile(a, 95))


def pct(k: int, n: int) -> str:
    return f"{100.0 * k / n:.1f}%" if n else "-"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Columns padded to width: text left-aligned, numbers right-aligned."""
    cells = [[str(h) for h in headers]] + [[_fmt(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    numeric = [bool(rows) and not isinstance(rows[0][i], str) or _numeric(cells[1][i])
               for i in range(len(headers))] if rows else [False] * len(headers)
    lines = []
    for k, r in enumerate(cells):
        parts = [c.rjust(w) if num else c.ljust(w) for c, w, num in zip(r, widths, numeric)]
        lines.append("  ".join(parts).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _numeric(text: str) -> bool:
    return text.rstrip("%x").replace(".", "", 1).lstrip("-").isdigit() or text == "-"


def _fmt(c: object) -> str:
    return f"{c:.2f}" if isinstance(c, float) else str(c)


def environment() -> str:
    """One line on what produced the numbers."""
    versions = []
    for dist in ("numpy", "Pillow", "zxing-cpp", "pyzbar", "segno"):
        try:
            versions.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{dist} -")
    return (f"python {platform.python_version()} on {platform.machine()}, "
            f"{os.cpu_count()} CPUs; " + ", ".join(versions))


def header(title: str, module: str) -> None:
    print(title)
    print(environment())
    print("command: python -m " + " ".join([module, *sys.argv[1:]]))
    print(flush=True)
