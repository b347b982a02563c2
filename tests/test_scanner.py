"""The repeat guard and the scanner, with explicit capture timestamps (no clock involved): a code
held in view counts once; again after it left the view or after repeat_guard_s."""

from __future__ import annotations

import numpy as np
import pytest

from gate.scan.camera import Frame
from gate.scan.decode import Code, make_decoder
from gate.scan.scanner import LEAVE_MIN_FRAMES, MAX_PAYLOAD_BYTES, RepeatGuard, Scanner
from tests.support.qrimages import qr_frame

S = 1_000_000_000  # ns per second
FRAME = S // 15    # 15 fps


def code(payload: bytes) -> Code:
    return Code(data=payload)


def admitted_times(guard: RepeatGuard, timeline: list[tuple[int, list[bytes]]]) -> list[tuple[int, bytes]]:
    out = []
    for ts, payloads in timeline:
        for c in guard.admit([code(p) for p in payloads], ts):
            out.append((ts, c.data))
    return out


# -- RepeatGuard ----------------------------------------------------------------------------

def test_repeat_guard_code_held_for_many_frames_counts_once() -> None:
    guard = RepeatGuard(repeat_guard_s=3.0, leave_s=0.5)
    timeline = [(i * FRAME, [b"A"]) for i in range(40)]  # 2.6 s in view
    assert admitted_times(guard, timeline) == [(0, b"A")]


def test_repeat_guard_code_that_left_and_came_back_counts_again() -> None:
    guard = RepeatGuard(repeat_guard_s=3.0, leave_s=0.5)
    timeline = ([(i * FRAME, [b"A"]) for i in range(5)]            # in view 0..0.27 s
                + [(i * FRAME, []) for i in range(5, 15)]           # gone for 0.67 s
                + [(i * FRAME, [b"A"]) for i in range(15, 20)])     # back, well before 3 s
    assert admitted_times(guard, timeline) == [(0, b"A"), (15 * FRAME, b"A")]


def test_repeat_guard_one_missed_frame_is_not_leaving() -> None:
    guard = RepeatGuard(repeat_guard_s=3.0, leave_s=0.5)
    timeline = [(0, [b"A"]), (FRAME, []), (2 * FRAME, [b"A"]), (3 * FRAME, []), (4 * FRAME, []),
                (5 * FRAME, [b"A"])]
    assert admitted_times(guard, timeline) == [(0, b"A")]


def test_repeat_guard_leaving_means_missing_from_examined_frames_for_leave_s() -> None:
    guard = RepeatGuard(repeat_guard_s=3.0, leave_s=0.5)
    assert guard.admit([code(b"A")], 0) != []
    for i in range(1, 8):  # missing from frames spanning 0.4 s: not yet gone
        assert guard.admit([], i * FRAME) == []
    assert guard.admit([code(b"A")], 8 * FRAME) == []
    for i in range(9, 17):  # missing from 8 frames spanning 0.47 s: still here
        guard.admit([], i * FRAME)
    guard.admit([], 17 * FRAME)  # 9 frames spanning 0.53 s: gone
    assert guard.admit([code(b"A")], 18 * FRAME) != []


def test_repeat_guard_a_stall_between_frames_is_not_absence() -> None:
    """The loop blocked 2 s in a slow decision: the next frames, captured after the stall,
    still hold the code, so it was never away and must not count again."""
    guard = RepeatGuard(repeat_guard_s=3.0, leave_s=0.5)
    timeline = [(0, [b"A"]), (FRAME, [b"A"]), (2 * S, [b"A"]), (2 * S + FRAME, [b"A"])]
    assert admitted_times(guard, timeline) == [(0, b"A")]


def test_repeat_guard_stalls_between_two_missed_frames_are_not_a_departure() -> None:
    guard = RepeatGuard(repeat_guard_s=30.0, leave_s=0.5)
    timeline = [(0, [b"A"]), (FRAME, []), (2 * S, []), (2 * S + FRAME, [b"A"])]
    assert admitted_times(guard, timeline) == [(0, b"A")]


def test_repeat_guard_period_starts_after_the_decision_however_slow() -> None:
    """The decision on the first frame took 5 s (longer than repeat_guard_s): the code held
    into the next frames counts once."""
    guard = RepeatGuard(repeat_guard_s=3.0, leave_s=0.5)
    timeline = [(0, [b"A"])] + [(5 * S + i * FRAME, [b"A"]) for i in range(30)]  # 2 s more
    assert admitted_times(guard, timeline) == [(0, b"A")]


def test_repeat_guard_code_held_counts_again_after_repeat_guard_s() -> None:
    guard = RepeatGuard(repeat_guard_s=3.0, leave_s=0.5)
    timeline = [(i * FRAME, [b"A"]) for i in range(15 * 7)]  # held 7 s
    times = [ts for ts, _ in admitted_times(guard, timeline)]
    assert len(times) == 3
    assert times[0] == 0
    # counted from the frame after the one that counted: the first frame at or after 3 s + 1
    assert 3 * S + FRAME <= times[1] < 3 * S + 2 * FRAME
    assert 3 * S + FRAME <= times[2] - times[1] < 3 * S + 2 * FRAME


def test_repeat_guard_zero_counts_every_frame() -> None:
    guard = RepeatGuard(repeat_guard_s=0.0, leave_s=0.5)
    assert len(admitted_times(guard, [(i * FRAME, [b"A"]) for i in range(4)])) == 4


def test_repeat_guard_codes_are_guarded_independently() -> None:
    guard = RepeatGuard(repeat_guard_s=3.0, leave_s=0.5)
    timeline = [(0, [b"A"]), (FRAME, [b"A", b"B"]), (2 * FRAME, [b"A", b"B"]), (3 * FRAME, [b"B"])]
    assert admitted_times(guard, timeline) == [(0, b"A"), (FRAME, b"B")]


def test_repeat_guard_two_new_codes_in_one_frame_are_both_admitted() -> None:
    guard = RepeatGuard(repeat_guard_s=3.0, leave_s=0.5)
    assert [c.data for c in guard.admit([code(b"A"), code(b"B")], 0)] == [b"A", b"B"]


def test_repeat_guard_forgets_codes_that_left() -> None:
    guard = RepeatGuard(repeat_guard_s=3.0, leave_s=0.5)
    for i in range(100):
        guard.admit([code(f"P{i}".encode())], i * S)  # a new code each second
    for i in range(LEAVE_MIN_FRAMES):
        guard.admit([], (101 + i) * S)
    assert len(guard._seen) == 0, "departed codes must not pile up in memory"


# -- Scanner on real QR frames --------------------------------------------------------------

@pytest.fixture(scope="module")
def zxing():  # type: ignore[no-untyped-def]
    return make_decoder("zxing")


FRAME_A = qr_frame(["PASS-A"], module_px=5)
FRAME_AB = qr_frame(["PASS-A", "PASS-B"], module_px=5)
FRAME_B = qr_frame(["PASS-B"], module_px=5)
EMPTY = qr_frame([], module_px=5)


def scan_all(scanner: Scanner, lumas: list[np.ndarray], step: int = FRAME) -> list[tuple[int, list[bytes]]]:
    out = []
    for i, luma in enumerate(lumas):
        presented = scanner.scan(Frame(luma=luma, ts_ns=i * step, seq=i + 1))
        if presented:
            out.append((i, sorted(p.code.data for p in presented)))
    return out


def test_scanner_code_held_in_front_of_the_camera_is_presented_once(zxing) -> None:  # type: ignore[no-untyped-def]
    scanner = Scanner(zxing, repeat_guard_s=3.0, leave_s=0.5)
    assert scan_all(scanner, [EMPTY] * 3 + [FRAME_A] * 25 + [EMPTY] * 2) == [(3, [b"PASS-A"])]


def test_scanner_code_shown_again_after_leaving_is_presented_again(zxing) -> None:  # type: ignore[no-untyped-def]
    scanner = Scanner(zxing, repeat_guard_s=3.0, leave_s=0.5)
    lumas = [FRAME_A] * 4 + [EMPTY] * 10 + [FRAME_A] * 4
    assert scan_all(scanner, lumas) == [(0, [b"PASS-A"]), (14, [b"PASS-A"])]


def test_scanner_two_codes_in_one_frame_are_both_presented(zxing) -> None:  # type: ignore[no-untyped-def]
    scanner = Scanner(zxing, repeat_guard_s=3.0, leave_s=0.5)
    lumas = [FRAME_A, FRAME_AB, FRAME_AB, FRAME_B]
    assert scan_all(scanner, lumas) == [(0, [b"PASS-A"]), (1, [b"PASS-B"])]


def test_scanner_same_payload_twice_in_one_frame_is_presented_once(zxing) -> None:  # type: ignore[no-untyped-def]
    twice = qr_frame(["SAME-PASS", "SAME-PASS"], module_px=5)
    assert len(zxing.decode(twice)) == 2  # the decoder does read both
    scanner = Scanner(zxing, repeat_guard_s=0.0, leave_s=0.5)  # even with no repeat guard
    presented = scanner.scan(Frame(luma=twice, ts_ns=0, seq=1))
    assert [p.code.data for p in presented] == [b"SAME-PASS"]


def test_scanner_presentation_carries_its_frame(zxing) -> None:  # type: ignore[no-untyped-def]
    scanner = Scanner(zxing, repeat_guard_s=3.0, leave_s=0.5)
    frame = Frame(luma=FRAME_A, ts_ns=123_456_789, seq=42)
    (p,) = scanner.scan(frame)
    assert p.frame is frame and p.frame.ts_ns == 123_456_789 and p.frame.seq == 42


class ListDecoder:
    """Returns given codes whatever the frame: for payloads no real QR code can carry."""

    name = "list"

    def __init__(self, codes: list[Code]) -> None:
        self.codes = codes

    def decode(self, luma: np.ndarray) -> list[Code]:
        return list(self.codes)


def test_scanner_drops_empty_and_oversized_payloads() -> None:
    biggest = b"x" * MAX_PAYLOAD_BYTES
    decoder = ListDecoder([code(b""), code(b"y" * (MAX_PAYLOAD_BYTES + 1)), code(biggest),
                           code(b"ok")])
    scanner = Scanner(decoder, repeat_guard_s=3.0, leave_s=0.5)
    presented = scanner.scan(Frame(luma=EMPTY, ts_ns=0, seq=1))
    assert [p.code.data for p in presented] == [biggest, b"ok"]
