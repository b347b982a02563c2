"""Frames in, presented codes out: decoding plus the repeat guard, so that a code held in view
opens the door once."""

from __future__ import annotations

from dataclasses import dataclass

from .camera import Frame
from .decode import Code, Decoder

MAX_PAYLOAD_BYTES = 4096  # larger than any QR code can hold: anything bigger is not a pass


@dataclass(frozen=True)
class Presentation:
    """A code that counts as presented now, with the frame it was read in."""

    code: Code
    frame: Frame


@dataclass
class _Sighting:
    counted_ns: int  # when this code last counted as presented
    seen_ns: int     # when it was last read at all


class RepeatGuard:
    """Decides which codes read in a frame count as a new presentation.

    A code counts when it first appears; again once it has left the view (unread for
    `leave_s`, so a frame or two the decoder misses is not a departure) and come back;
    and again when `repeat_guard_s` has passed since it last counted.
    """

    def __init__(self, repeat_guard_s: float, leave_s: float) -> None:
        self.repeat_guard_ns = int(repeat_guard_s * 1e9)
        self.leave_ns = int(leave_s * 1e9)
        self._seen: dict[str, _Sighting] = {}

    def admit(self, codes: list[Code], ts_ns: int) -> list[Code]:
        self._forget_departed(ts_ns)
        admitted = []
        for code in codes:
            s = self._seen.get(code.sha256)
            if s is None or ts_ns - s.counted_ns >= self.repeat_guard_ns:
                self._seen[code.sha256] = _Sighting(counted_ns=ts_ns, seen_ns=ts_ns)
                admitted.append(code)
            else:
                s.seen_ns = ts_ns
        return admitted

    def _forget_departed(self, ts_ns: int) -> None:
        for key in [k for k, s in self._seen.items() if ts_ns - s.seen_ns > self.leave_ns]:
            del self._seen[key]


class Scanner:
    """Decodes each frame and passes on the codes the repeat guard admits."""

    def __init__(self, decoder: Decoder, repeat_guard_s: float, leave_s: float) -> None:
        self.decoder = decoder
        self.guard = RepeatGuard(repeat_guard_s, leave_s)

    def scan(self, frame: Frame) -> list[Presentation]:
        codes = self._unique(self.decoder.decode(frame.luma))
        return [Presentation(code, frame) for code in self.guard.admit(codes, frame.ts_ns)]

    @staticmethod
    def _unique(codes: list[Code]) -> list[Code]:
        """One entry per payload (a code may be read twice) and nothing oversized or empty."""
        seen: dict[str, Code] = {}
        for code in codes:
            if 0 < len(code.data) <= MAX_PAYLOAD_BYTES:
                seen.setdefault(code.sha256, code)
        return list(seen.values())
