"""Frames in, presented codes out: decoding plus the repeat guard, so that a code held in view
opens the door once."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

from ..config import DecoderSection
from ..errors import DecoderUnavailable
from .camera import Frame
from .decode import Code, Decoder, make_decoder
from .idle import IdleDetector

log = logging.getLogger(__name__)

MAX_PAYLOAD_BYTES = 4096  # larger than any QR code can hold: anything bigger is not a pass


@dataclass(frozen=True)
class Presentation:
    """A code that counts as presented now, with the frame it was read in."""

    code: Code
    frame: Frame


LEAVE_MIN_FRAMES = 3  # a code missing from fewer examined frames has not left (misreads)


@dataclass
class _Sighting:
    counted_ns: int | None  # capture time the repeat guard runs from; None: set on next frame
    missing_since_ns: int | None = None  # first examined frame without it, since last seen
    missed: int = 0                      # examined frames without it, since last seen


class RepeatGuard:
    """Decides which codes read in a frame count as a new presentation.

    A code counts when it first appears; again once it has left the view and come back;
    and again when `repeat_guard_s` has passed since it last counted.

    Every time here is a capture time of a frame actually examined, never wall time across
    the loop's own stalls: a decision that blocks the loop (a slow server) must not look like
    the code being away or held long. So "left" means missing from at least
    LEAVE_MIN_FRAMES examined frames whose capture times span `leave_s` (a frame or two the
    decoder misses is no departure), and the repeat guard period starts at the first frame
    examined after the one that counted (after the decision, however long it took).
    """

    def __init__(self, repeat_guard_s: float, leave_s: float) -> None:
        self.repeat_guard_ns = int(repeat_guard_s * 1e9)
        self.leave_ns = int(leave_s * 1e9)
        self._seen: dict[str, _Sighting] = {}

    def admit(self, codes: list[Code], ts_ns: int) -> list[Code]:
        present = {code.sha256 for code in codes}
        for pending in self._seen.values():
            if pending.counted_ns is None:  # the first frame examined after it counted
                pending.counted_ns = ts_ns
        self._forget_departed(present, ts_ns)
        admitted = []
        for code in codes:
            s = self._seen.get(code.sha256)
            if s is None or (s.counted_ns is not None
                             and ts_ns - s.counted_ns >= self.repeat_guard_ns):
                self._seen[code.sha256] = _Sighting(counted_ns=None)
                admitted.append(code)
            else:
                s.missing_since_ns, s.missed = None, 0
        return admitted

    def _forget_departed(self, present: set[str], ts_ns: int) -> None:
        min_frames = LEAVE_MIN_FRAMES if self.leave_ns > 0 else 1
        departed = []
        for key, s in self._seen.items():
            if key in present:
                continue
            if s.missing_since_ns is None:
                s.missing_since_ns = ts_ns
            s.missed += 1
            if s.missed >= min_frames and ts_ns - s.missing_since_ns >= self.leave_ns:
                departed.append(key)
        for key in departed:
            del self._seen[key]


class Scanner:
    """Decodes frames and passes on the codes the repeat guard admits.

    With an `IdleDetector`, a frame that looks like the last decoded one is not decoded: its
    codes are the last decoded frame's (carried over, so a code held still keeps counting as
    in view and the repeat guard is not fooled into seeing it leave and come back).

    `counters`: frames scanned, decoded and skipped, and the decoder's second chances (frames
    on which regions were read again, and those on which that found a code).
    """

    def __init__(self, decoder: Decoder, repeat_guard_s: float, leave_s: float,
                 idle: IdleDetector | None = None) -> None:
        self.decoder = decoder
        self.guard = RepeatGuard(repeat_guard_s, leave_s)
        self.idle = idle
        self._last: list[Code] = []  # what the last decoded frame held
        self._frames = self._decoded = self._skipped = 0
        self.worth_recording = False  # the last frame was decoded and held a code or a candidate
        self.section: DecoderSection | None = None  # what from_config/reconfigure built

    @classmethod
    def from_config(cls, section: DecoderSection) -> Scanner:
        """The scanner a [decoder] section describes (DecoderUnavailable if its backend is)."""
        scanner = cls(_decoder_for(section), section.repeat_guard_s, section.leave_s,
                      _idle_for(section))
        scanner.section = section
        return scanner

    def reconfigure(self, section: DecoderSection) -> None:
        """Take a reloaded [decoder] section.

        The repeat guard keeps what it has seen. If the backend or second chance changed, a
        new decoder (if that backend cannot load, the running one stays, and it is logged);
        if the idle-skip keys changed, a new idle detector.
        """
        self.guard.repeat_guard_ns = int(section.repeat_guard_s * 1e9)
        self.guard.leave_ns = int(section.leave_s * 1e9)
        old = self.section
        if old is None or _decoder_keys(section) != _decoder_keys(old):
            try:
                self.decoder = _decoder_for(section)
            except DecoderUnavailable as exc:
                log.error("reload: keeping the %s decoder: %s", self.decoder.name, exc)
                if old is not None:  # remember what runs, so a later reload compares to it
                    section = dataclasses.replace(section, **{k: getattr(old, k)
                                                              for k in DECODER_KEYS})
        if old is None or _idle_keys(section) != _idle_keys(old):
            self.idle = _idle_for(section)
        self.section = section

    @property
    def last_codes(self) -> list[Code]:
        """What the last decoded frame held (a skipped frame carries these over)."""
        return list(self._last)

    def scan(self, frame: Frame) -> list[Presentation]:
        self._frames += 1
        if self.idle is not None and not self.idle.needs_decode(frame.luma):
            self._skipped += 1
            self.worth_recording = False
            codes = self._last
        else:
            self._decoded += 1
            found = (self.decoder.decode(frame.luma) if frame.main is None
                     else self.decoder.decode(frame.luma, main=frame.main))
            codes = self._last = self._unique(found)
            rescue = getattr(self.decoder, "rescue", None)
            self.worth_recording = bool(codes) or bool(getattr(rescue, "tried", 0))
        return [Presentation(code, frame) for code in self.guard.admit(codes, frame.ts_ns)]

    @property
    def counters(self) -> dict[str, int]:
        rescue = getattr(self.decoder, "rescue", None)
        return {"frames": self._frames, "decoded": self._decoded, "skipped": self._skipped,
                "second_chance_runs": getattr(rescue, "runs", 0),
                "second_chance_reads": getattr(rescue, "reads", 0),
                "main_stream_reads": getattr(rescue, "main_reads", 0)}

    @staticmethod
    def _unique(codes: list[Code]) -> list[Code]:
        """One entry per payload (a code may be read twice) and nothing oversized or empty."""
        seen: dict[str, Code] = {}
        for code in codes:
            if 0 < len(code.data) <= MAX_PAYLOAD_BYTES:
                seen.setdefault(code.sha256, code)
        return list(seen.values())


DECODER_KEYS = ("backend", "second_chance", "second_chance_min_score")
IDLE_KEYS = ("idle_skip", "full_decode_every", "idle_level")


def _decoder_keys(s: DecoderSection) -> tuple[object, ...]:
    return tuple(getattr(s, k) for k in DECODER_KEYS)


def _idle_keys(s: DecoderSection) -> tuple[object, ...]:
    return tuple(getattr(s, k) for k in IDLE_KEYS)


def _decoder_for(s: DecoderSection) -> Decoder:
    return make_decoder(s.backend, s.second_chance, s.second_chance_min_score)


def _idle_for(s: DecoderSection) -> IdleDetector | None:
    return IdleDetector(level=s.idle_level, full_every=s.full_decode_every) if s.idle_skip else None
