"""The gate's own scan path, as the daemon builds it: read rate of its default decoder, and the
cost of an idle frame through its real Scanner.

    python -m bench.scanpath            # 200 hard + 200 medium frames, 8 entrances x 60 frames
    python -m bench.scanpath --quick    # 40 + 40, 3 entrances x 30: about 20 s

1. Read rate at 640x480 on the hard and medium code frames of bench.common.code_frames (the
   same frames as bench.decoders and bench.second_chance), and on frames with no code (empty,
   and with a person walking through): `gate.scan.decode.make_decoder("zxing")` with the defaults
   (second chance on) against raw zxing-cpp. Each frame is a new visitor: the decoder's last
   sighting is cleared between frames. Target: >= 85% of hard+medium, 0 wrong payloads.
2. Idle frames: `Scanner.from_config(DecoderSection())` (the daemon's default scanner) over
   empty entrances, each once perfectly still (identical frames) and once with fresh sensor
   noise per frame. The cost of `scan()` on the frames it skipped against a full decode of the
   same frames (raw zxing-cpp; and the default decoder, second chance included). Target: an
   idle frame <= 0.3x a full decode.
3. A code appears: empty frames of an entrance, then the same entrance with a code held up,
   through the default scanner: the code must be presented on its first frame whenever the
   default decoder reads that frame on its own.

Each frame's cost is the shortest of three calls (other processes only ever add time).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import numpy as np
import zxingcpp

from bench.common import (
    code_frames,
    header,
    measure_decoder,
    ms,
    pct,
    quiet_gc,
    seed_for,
    table,
    timed,
)
from bench.scenes import (
    DIFFICULTIES,
    empty_scene,
    empty_sequence,
    make_entrance,
    random_payload,
    render_scene,
    sample_params,
)
from gate.config import DecoderSection
from gate.scan.camera import Frame
from gate.scan.decode import ZxingDecoder, make_decoder, qr_formats
from gate.scan.scanner import Scanner

SIZE = (640, 480)
REPEAT = 3
QR = qr_formats(zxingcpp)


def raw_texts(y: np.ndarray) -> list[str]:
    return [b.text for b in zxingcpp.read_barcodes(y, formats=QR)]


def gate_texts(decoder: ZxingDecoder) -> Callable[[np.ndarray], list[str]]:
    def decode(y: np.ndarray) -> list[str]:
        if decoder.rescue is not None:
            decoder.rescue.last_seen = None  # a new visitor: no last sighting
        return [c.data.decode("utf-8", "replace") for c in decoder.decode(y)]
    return decode


def no_code_frames(n: int) -> list[np.ndarray]:
    """``n`` empty entrances, each once empty and once with a person walking through."""
    out = []
    for i in range(n):
        rng = np.random.default_rng(seed_for("scanpath-empty", i))
        entrance = make_entrance(rng, SIZE, float(rng.uniform(70, 170)), float(rng.uniform(0, 0.5)))
        noise = float(rng.uniform(1, 8))
        out += [empty_scene(rng, SIZE, noise, entrance),
                empty_scene(rng, SIZE, noise, entrance, person=True)]
    return out


def read_rate(n: int, n_empty: int) -> None:
    sets = {d: code_frames(d, SIZE, n) for d in ("hard", "medium")}
    empties = no_code_frames(n_empty)
    default = make_decoder("zxing")
    assert isinstance(default, ZxingDecoder) and default.rescue is not None
    decoders = {"raw zxing-cpp (QR model 2)": raw_texts,
                "gate default decoder (second chance)": gate_texts(default)}
    rows = []
    for name, decode in decoders.items():
        m = measure_decoder(decode, sets, empties, REPEAT)
        reads, wrong = m.reads, m.wrong
        (c50, c95), (e50, e95) = ms(m.code_s), ms(m.empty_s)
        reread = "-"
        if decode is not raw_texts:  # once more, untimed: on how many no-code frames it ran
            runs = default.rescue.runs
            for y in empties:
                decode(y)
            reread = pct(default.rescue.runs - runs, len(empties))
        rows.append([name, pct(reads["hard"], n), pct(reads["medium"], n),
                     pct(reads["hard"] + reads["medium"], 2 * n), wrong, c50, c95, e50, e95,
                     reread])
    print(f"Read rate at 640x480: {n} hard + {n} medium code frames, {len(empties)} frames with"
          " no code (half with a person); ms per frame. Target for the gate default: hard+med"
          " >= 85%, wrong = 0. 'no-code re-read': share of no-code frames on which the second"
          " chance read a region again.")
    print(table(["decoder", "hard", "medium", "hard+med", "wrong", "code med", "code p95",
                 "no-code med", "no-code p95", "no-code re-read"], rows))


def idle_cost(scenes: int, length: int) -> None:
    sequences = []
    for i in range(scenes):
        rng = np.random.default_rng(seed_for("scanpath-idle", i))
        entrance = make_entrance(rng, SIZE, float(rng.uniform(70, 170)), float(rng.uniform(0, 0.5)))
        noise = float(rng.uniform(1, 8))
        sequences.append(("still", empty_sequence(rng, SIZE, length, noise, static=True,
                                                  entrance=entrance)))
        sequences.append(("noisy", empty_sequence(rng, SIZE, length, noise, entrance=entrance)))
    default = make_decoder("zxing")
    rows = []
    for kind in ("still", "noisy"):
        frames = [y for k, seq in sequences if k == kind for y in seq]
        skipped_t, decoded = [], 0
        with quiet_gc():
            full_t = [timed(raw_texts, y, REPEAT)[1] for y in frames]
            default_t = [timed(default.decode, y, REPEAT)[1] for y in frames]
            for k, seq in sequences:
                if k != kind:
                    continue
                scanner = Scanner.from_config(DecoderSection())
                for j, y in enumerate(seq):
                    before = scanner.counters["skipped"]
                    _, dt = timed(scanner.scan, Frame(luma=y, ts_ns=j * 66_666_667, seq=j + 1))
                    if scanner.counters["skipped"] > before:
                        skipped_t.append(dt)
                    else:
                        decoded += 1
        f50, f95 = ms(full_t)
        d50, _ = ms(default_t)
        s50, s95 = ms(skipped_t)
        mean_loop = (np.sum(skipped_t) + decoded * np.mean(default_t)) / len(frames)
        rows.append([kind, len(frames), pct(len(skipped_t), len(frames)), f50, f95, d50, s50,
                     s95, f"{s50 / f50:.2f}x", f"{s50 / d50:.2f}x",
                     f"{mean_loop / np.mean(full_t):.2f}x"])
    print(f"Idle frames through the daemon's default Scanner: {scenes} empty entrances at"
          f" 640x480, {length} frames each, once still (identical frames) and once noisy (sensor"
          " noise 1-8 and 0.5% flicker per frame). ms per frame. 'idle' = scan() on a frame it"
          " skipped; 'full' = raw zxing-cpp on the same frames; 'default' = the gate's default"
          " decoder (second chance included); 'loop' = mean scan cost over all frames (skipped"
          " as timed, decoded at the default decoder's mean) against raw on every frame."
          " Target: idle <= 0.3x full.")
    print(table(["scene", "frames", "skipped", "full med", "full p95", "default med",
                 "idle med", "idle p95", "idle/full", "idle/default", "loop/full"], rows))


def appearance(trials: int) -> None:
    presented_first, readable, late = {d: 0 for d in DIFFICULTIES}, {d: 0 for d in DIFFICULTIES}, 0
    counts = {d: 0 for d in DIFFICULTIES}
    for i in range(trials):
        d = DIFFICULTIES[i % 3]
        rng = np.random.default_rng(seed_for("scanpath-appear", i))
        params = sample_params(rng, d)
        entrance = make_entrance(rng, SIZE, params.ambient, params.light)
        empties = empty_sequence(rng, SIZE, 12, params.noise_sigma, entrance=entrance,
                                 blur=params.blur_sigma, static=bool(i % 2))
        payload = random_payload(rng)
        frame, _ = render_scene(rng, params, SIZE, payload, entrance, person=False)
        reads_alone = payload in gate_texts(ZxingDecoder())(frame)
        scanner = Scanner.from_config(DecoderSection())
        for j, y in enumerate(empties):
            scanner.scan(Frame(luma=y, ts_ns=j * 66_666_667, seq=j + 1))
        got = scanner.scan(Frame(luma=frame, ts_ns=12 * 66_666_667, seq=13))
        first = any(p.code.data.decode() == payload for p in got)
        counts[d] += 1
        readable[d] += reads_alone
        presented_first[d] += first
        late += reads_alone and not first
    print(f"A code appears ({trials} trials, easy/medium/hard in turn, after 12 empty frames,"
          " still or noisy in turn) through the default Scanner: code frames the default decoder"
          " reads on its own, and those the scanner presented on that first code frame.")
    rows = [[d, counts[d], pct(readable[d], counts[d]), pct(presented_first[d], counts[d])]
            for d in DIFFICULTIES]
    print(table(["difficulty", "trials", "readable alone", "presented at once"], rows))
    print(f"readable but not presented at once: {late} (target 0)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.scanpath",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer frames")
    args = parser.parse_args(argv)
    header("bench.scanpath: the gate's default decoder and Scanner", "bench.scanpath")
    n, n_empty, scenes, length, trials = (40, 12, 3, 30, 30) if args.quick else (200, 40, 8, 60, 150)
    read_rate(n, n_empty)
    print()
    idle_cost(scenes, length)
    print()
    appearance(trials)


if __name__ == "__main__":
    main()
