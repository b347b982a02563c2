"""The scan path's fast paths, for correctness only (never timings): the idle-frame skip gives
the same presentations as decoding every frame, reads a code that appears at once (and within
full_decode_every frames at worst), and never lets a code held still open the door twice; the
second chance reads hard frames the raw pass misses, changes nothing where the raw pass reads,
and never returns a wrong payload. Frames come from the benchmark's seeded scene generator."""

from __future__ import annotations

import functools
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from bench.common import code_frames, seed_for
from bench.pipeline import entrance_day
from bench.scenes import (
    empty_scene,
    empty_sequence,
    make_entrance,
    random_payload,
    render_scene,
    sample_params,
)
from gate.config import DecoderSection
from gate.errors import DecoderUnavailable
from gate.scan.camera import Frame
from gate.scan.decode import Code, PyzbarDecoder, ZxingDecoder, make_decoder
from gate.scan.idle import IdleDetector
from gate.scan.scanner import Scanner
from gate.scan.second_chance import Box, Texture
from tests.support.qrimages import qr_frame, write_png

S = 1_000_000_000
FRAME = S // 15  # 15 fps
SIZE = (640, 480)


def texts(codes: list[Code]) -> list[str]:
    return sorted(c.data.decode() for c in codes)


def scan_all(scanner: Scanner, lumas: list[np.ndarray]) -> list[tuple[int, str]]:
    """(frame index, payload) of every presentation, frames stamped at 15 fps."""
    out = []
    for i, luma in enumerate(lumas):
        for p in scanner.scan(Frame(luma=luma, ts_ns=i * FRAME, seq=i + 1)):
            out.append((i, p.code.data.decode()))
    return out


@functools.cache
def day() -> tuple[list[np.ndarray], list[str]]:
    """The pipeline benchmark's entrance day: empty frames, people walking by, 12-frame visits."""
    return entrance_day(200)


@functools.cache
def hard_frames() -> list[tuple[np.ndarray, str]]:
    return [(y, t.payload) for y, t in code_frames("hard", SIZE, 14)]


@functools.cache
def static_entrance() -> tuple[np.ndarray, np.ndarray, str]:
    """One perfectly still empty frame, and the same entrance with a medium code held up."""
    rng = np.random.default_rng(seed_for("test-appear", 1))
    params = sample_params(rng, "medium")
    entrance = make_entrance(rng, SIZE, params.ambient, params.light)
    [empty] = empty_sequence(rng, SIZE, 1, params.noise_sigma, static=True, entrance=entrance,
                             blur=params.blur_sigma)
    payload = random_payload(rng)
    frame, _ = render_scene(rng, params, SIZE, payload, entrance, person=False)
    return empty, frame, payload


# -- model 2 only ----------------------------------------------------------------------------

def micro_qr_frame() -> np.ndarray:
    import segno

    m = np.pad(np.array(segno.make("2336", micro=True).matrix, dtype=bool), 2)
    img = np.where(np.kron(m, np.ones((6, 6), dtype=bool)), 0, 255).astype(np.uint8)
    frame = np.full((480, 640), 200, dtype=np.uint8)
    frame[100:100 + img.shape[0], 100:100 + img.shape[1]] = img
    return frame


def test_zxing_reads_qr_model_2_only_never_micro_qr() -> None:
    import zxingcpp

    frame = micro_qr_frame()
    family = zxingcpp.read_barcodes(frame, formats=[zxingcpp.BarcodeFormat.QRCode])
    assert [b.text for b in family] == ["2336"], "the QRCode family does read Micro QR"
    assert ZxingDecoder(second_chance=False).decode(frame) == []
    assert ZxingDecoder(second_chance=True, min_score=0.0).decode(frame) == []


# -- second chance ---------------------------------------------------------------------------

@pytest.mark.slow
def test_second_chance_reads_hard_frames_the_raw_pass_misses() -> None:
    raw, rescuing = ZxingDecoder(second_chance=False), ZxingDecoder()
    missed = [(y, p) for y, p in hard_frames() if p not in texts(raw.decode(y))]
    assert len(missed) >= 4, "the seeded hard frames should defeat the raw pass often"
    rescued = 0
    for y, payload in missed:
        rescuing.rescue.last_seen = None  # each frame a new visitor
        got = texts(rescuing.decode(y))
        assert got in ([], [payload])
        rescued += got == [payload]
    assert rescued >= len(missed) // 2, (rescued, len(missed))
    assert rescuing.rescue.reads == rescued and rescuing.rescue.runs >= rescued


def test_second_chance_changes_nothing_where_the_raw_pass_reads() -> None:
    raw, rescuing = ZxingDecoder(second_chance=False), ZxingDecoder()
    frames = [(y, t.payload) for d in ("easy", "medium") for y, t in code_frames(d, SIZE, 4)]
    frames += hard_frames()
    for y, _ in frames:
        first = raw.decode(y)
        if first:
            runs = rescuing.rescue.runs
            assert rescuing.decode(y) == first  # payloads and corners alike
            assert rescuing.rescue.runs == runs


def test_second_chance_corners_are_in_frame_pixels() -> None:
    raw, rescuing = ZxingDecoder(second_chance=False), ZxingDecoder()
    for y, t in code_frames("hard", SIZE, 14):
        if raw.decode(y):
            continue
        rescuing.rescue.last_seen = None
        codes = rescuing.decode(y)
        if codes:
            cx, cy = codes[0].center
            tx, ty = t.corners.mean(axis=0)
            assert abs(cx - tx) < 6 and abs(cy - ty) < 6, (codes[0].corners, t.corners)
            return
    pytest.fail("no hard frame was rescued")


def test_second_chance_never_returns_a_wrong_payload() -> None:
    """Every region read again on every frame (min_score 0), with a stale last sighting: code
    frames give their own payload or nothing, frames with no code give nothing."""
    decoder = ZxingDecoder(min_score=0.0)
    for y, payload in hard_frames():
        assert texts(decoder.decode(y)) in ([], [payload])
    rng = np.random.default_rng(seed_for("test-no-code", 0))
    for i in range(12):
        decoder.rescue.last_seen = Box(200, 150, 360, 310)
        y = empty_scene(rng, SIZE, float(rng.uniform(1, 8)), person=bool(i % 2))
        assert decoder.decode(y) == []
    assert decoder.rescue.runs >= 12


def test_last_sighting_is_read_again_only_where_it_still_looks_like_a_code() -> None:
    empty, frame, _ = static_entrance()
    decoder = ZxingDecoder()
    [code] = decoder.decode(frame)
    sighting = decoder.rescue.last_seen
    assert sighting is not None
    assert Texture(frame).score(sighting) >= 1.5 > Texture(empty).score(sighting)
    assert decoder.decode(empty) == [] and decoder.rescue.tried == 0  # left: not read again


def test_last_sighting_is_forgotten_after_decodes_that_read_nothing() -> None:
    empty, frame, _ = static_entrance()
    decoder = ZxingDecoder()
    decoder.decode(frame)
    for _ in range(decoder.rescue.sighting_decodes):
        decoder.decode(empty)
    assert decoder.rescue.last_seen is not None
    decoder.decode(empty)
    assert decoder.rescue.last_seen is None


# -- idle skip -------------------------------------------------------------------------------

@pytest.mark.slow
def test_idle_skip_presents_the_same_codes_in_the_same_frames_as_decoding_every_frame() -> None:
    frames, payloads = day()
    every = Scanner(make_decoder("zxing"), repeat_guard_s=3.0, leave_s=0.5)
    skipping = Scanner(make_decoder("zxing"), repeat_guard_s=3.0, leave_s=0.5,
                       idle=IdleDetector())
    expected = scan_all(every, frames)
    assert scan_all(skipping, frames) == expected
    assert [p for _, p in expected] == payloads[:len(expected)] and len(expected) >= 3
    c = skipping.counters
    assert c["frames"] == len(frames) == c["decoded"] + c["skipped"] and c["skipped"] > 50


def test_idle_skip_same_presentations_for_a_code_held_past_the_repeat_guard() -> None:
    _, frame, payload = static_entrance()
    lumas = [frame] * (15 * 7)  # held perfectly still for 7 s
    every = Scanner(make_decoder("zxing"), repeat_guard_s=3.0, leave_s=0.5)
    skipping = Scanner(make_decoder("zxing"), repeat_guard_s=3.0, leave_s=0.5,
                       idle=IdleDetector(full_every=10))
    expected = scan_all(every, lumas)
    assert len(expected) == 3  # counts again after each 3 s, as designed
    assert scan_all(skipping, lumas) == expected
    assert skipping.counters["decoded"] == 11


def test_code_held_still_while_frames_are_skipped_is_presented_once() -> None:
    """leave_s (0.2 s = 3 frames) is shorter than the gap between periodic decodes (10
    frames): only the carried-over codes keep the guard from seeing the code leave."""
    empty, frame, payload = static_entrance()
    lumas = [empty] * 5 + [frame] * 60 + [empty] * 5
    scanner = Scanner(make_decoder("zxing"), repeat_guard_s=30.0, leave_s=0.2,
                      idle=IdleDetector(full_every=10))
    assert scan_all(scanner, lumas) == [(5, payload)]
    assert scanner.counters["skipped"] >= 55


def test_code_appearing_in_a_static_scene_is_read_in_its_first_frame() -> None:
    empty, frame, payload = static_entrance()
    for every in (10, 1000):
        scanner = Scanner(make_decoder("zxing"), repeat_guard_s=3.0, leave_s=0.5,
                          idle=IdleDetector(full_every=every))
        assert scan_all(scanner, [empty] * 23 + [frame]) == [(23, payload)]
        assert scanner.counters["skipped"] == 22 - 22 // every


def test_a_change_the_idle_check_cannot_see_is_read_within_full_decode_every_frames() -> None:
    empty, frame, payload = static_entrance()
    blind = IdleDetector(level=255, full_every=10)  # no thumbnail cell can move by > 255
    scanner = Scanner(make_decoder("zxing"), repeat_guard_s=3.0, leave_s=0.5, idle=blind)
    presented = scan_all(scanner, [empty] * 3 + [frame] * 10)
    assert presented == [(10, payload)]  # frame 0 decoded, then the periodic decode at 10


def test_idle_detector_decodes_a_frame_of_another_size() -> None:
    idle = IdleDetector()
    assert idle.needs_decode(np.zeros((480, 640), np.uint8))
    assert not idle.needs_decode(np.zeros((480, 640), np.uint8))
    assert idle.needs_decode(np.zeros((240, 320), np.uint8))


# -- pyzbar ----------------------------------------------------------------------------------

def test_pyzbar_backend_has_no_second_chance_and_skips_idle_frames_alike() -> None:
    decoder = make_decoder("pyzbar", second_chance=True)
    assert isinstance(decoder, PyzbarDecoder) and not hasattr(decoder, "rescue")
    scanner = Scanner.from_config(DecoderSection(backend="pyzbar"))
    a, ab, empty = qr_frame(["PASS-A"], module_px=5), qr_frame(["PASS-A", "PASS-B"], module_px=5), \
        qr_frame([], module_px=5)
    lumas = [empty] * 3 + [a] * 12 + [ab] * 12 + [empty] * 12 + [a] * 3
    expected = scan_all(Scanner(PyzbarDecoder(), 3.0, 0.5), lumas)
    assert expected == [(3, "PASS-A"), (15, "PASS-B"), (39, "PASS-A")]
    assert scan_all(scanner, lumas) == expected
    c = scanner.counters
    assert c["skipped"] > 20 and c["second_chance_runs"] == 0


# -- config and reload -----------------------------------------------------------------------

def test_scanner_from_config_follows_the_decoder_keys() -> None:
    default = Scanner.from_config(DecoderSection())
    assert isinstance(default.decoder, ZxingDecoder) and default.decoder.rescue is not None
    assert default.decoder.rescue.min_score == 1.5
    assert default.idle is not None and default.idle.full_every == 10 and default.idle.level == 12
    plain = Scanner.from_config(DecoderSection(second_chance=False, idle_skip=False))
    assert isinstance(plain.decoder, ZxingDecoder) and plain.decoder.rescue is None
    assert plain.idle is None
    tuned = Scanner.from_config(DecoderSection(second_chance_min_score=3.0, full_decode_every=4,
                                               idle_level=20))
    assert tuned.decoder.rescue.min_score == 3.0  # type: ignore[attr-defined]
    assert tuned.idle is not None and (tuned.idle.full_every, tuned.idle.level) == (4, 20)


def test_scanner_reconfigure_keeps_the_guard_and_swaps_what_changed() -> None:
    scanner = Scanner.from_config(DecoderSection())
    decoder, idle = scanner.decoder, scanner.idle
    scanner.guard.admit([Code(b"HELD")], 0)
    scanner.reconfigure(DecoderSection(repeat_guard_s=9.0, leave_s=1.0))
    assert scanner.decoder is decoder and scanner.idle is idle
    assert scanner.guard.repeat_guard_ns == 9 * S and scanner.guard.leave_ns == S
    assert scanner.guard.admit([Code(b"HELD")], FRAME) == []  # still seen: not presented again
    scanner.reconfigure(DecoderSection(second_chance=False, full_decode_every=3))
    assert scanner.decoder is not decoder and scanner.decoder.rescue is None  # type: ignore[attr-defined]
    assert scanner.idle is not idle and scanner.idle is not None and scanner.idle.full_every == 3
    scanner.reconfigure(DecoderSection(second_chance=False, idle_skip=False))
    assert scanner.idle is None


def test_scanner_reconfigure_keeps_the_running_decoder_if_the_new_one_cannot_load(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import gate.scan.scanner as scanner_module

    scanner = Scanner.from_config(DecoderSection())
    running = scanner.decoder

    def unavailable(*args: object) -> None:
        raise DecoderUnavailable("pyzbar cannot find the zbar library")

    monkeypatch.setattr(scanner_module, "make_decoder", unavailable)
    scanner.reconfigure(DecoderSection(backend="pyzbar"))
    assert scanner.decoder is running
    assert scanner.section is not None and scanner.section.backend == "zxing"


# -- the daemon ------------------------------------------------------------------------------

class StampedSource:
    """Frames from memory, stamped at 15 fps from now (a camera, without the waiting)."""

    def __init__(self, lumas: list[np.ndarray]) -> None:
        self.lumas, self.i, self.t0 = lumas, 0, time.monotonic_ns()

    def read(self) -> Frame | None:
        if self.i >= len(self.lumas):
            return None
        self.i += 1
        return Frame(luma=self.lumas[self.i - 1], ts_ns=self.t0 + self.i * FRAME, seq=self.i)

    def close(self) -> None:
        pass


def gate_decisions(tmp_path: Path, lumas: list[np.ndarray], payloads: list[str],
                   **decoder: object) -> tuple[list[tuple[str, str]], dict[str, int]]:
    """Run the real Gate over `lumas` with [decoder] overrides; its journaled decisions."""
    from gate.config import load_config
    from gate.daemon import Gate
    from tests.support.daemon import gate_config, journal_events, write_allowlist

    run = tmp_path / f"run-{len(list(tmp_path.iterdir()))}"
    run.mkdir()
    allow = write_allowlist(run / "allow.csv", [f"{p},Visitor {i}" for i, p in enumerate(payloads)],
                            header="code,label")
    (run / "frames").mkdir()
    write_png(run / "frames" / "unused.png", lumas[0])  # the files camera wants one; replaced
    config = gate_config(run, run / "frames", allow, decoder={"leave_s": 0.5, "repeat_guard_s": 3.0,
                                                              **decoder})
    gate = Gate(load_config(config), threading.Event())
    try:
        gate.source = StampedSource(lumas)
        gate.run()
        counters = gate.scanner.counters
    finally:
        gate.close()
    events = journal_events(run / "state")
    return [(e["verdict"], e["label"]) for e in events if e["kind"] == "decision"], counters


@pytest.mark.slow
def test_daemon_decisions_are_the_same_with_and_without_each_fast_path(tmp_path: Path) -> None:
    frames, payloads = day()
    base, plain = gate_decisions(tmp_path, frames, payloads, idle_skip=False, second_chance=False)
    assert len(base) >= 3 and all(v == "grant" for v, _ in base)
    assert plain["skipped"] == 0 and plain["second_chance_runs"] == 0
    for keys in ({}, {"idle_skip": False}, {"second_chance": False}):
        decisions, counters = gate_decisions(tmp_path, frames, payloads, **keys)
        assert decisions == base, keys
        assert (counters["skipped"] > 0) == keys.get("idle_skip", True)


@pytest.mark.slow
def test_daemon_code_held_in_identical_frames_opens_the_door_once(tmp_path: Path) -> None:
    """`gate run` on the files camera replaying identical PNGs (a perfectly still scene): the
    held code is skipped on most frames and leave_s (0.15 s) is shorter than the gap between
    periodic decodes (0.5 s), yet it is one decision and one door opening."""
    from tests.support.daemon import gate_config, journal_events, run_gate, write_allowlist
    from tests.support.qrimages import write_frames

    write_frames(tmp_path / "frames", [None] * 3 + ["GATE-TEST-HELD-1"] * 45 + [None] * 3)
    allow = write_allowlist(tmp_path / "allow.csv", ["GATE-TEST-HELD-1,Held"], header="code,label")
    config = gate_config(tmp_path, tmp_path / "frames", allow, camera={"fps": 30},
                         decoder={"leave_s": 0.15, "repeat_guard_s": 30.0,
                                  "full_decode_every": 15})
    result = run_gate(config)
    assert result.returncode == 0, result.stdout + result.stderr
    events = journal_events(tmp_path / "state")
    assert [(e["verdict"], e["label"]) for e in events if e["kind"] == "decision"] == [
        ("grant", "Held")]
    assert [e["state"] for e in events if e["kind"] == "door"] == ["unlocked", "locked"]
