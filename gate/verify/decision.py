"""The Decision value and the Verifier interface every verifier implements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ..contracts import SOURCES, Source, is_reason
from ..contracts import Verdict as Verdict
from ..occupancy import ServerOccupancy

STRICTNESS: dict[str, int] = {"grant": 0, "staff": 1, "deny": 2}  # deny > staff > grant


@dataclass(frozen=True)
class Decision:
    """What to do with one presented code and why.

    verdict: grant (open), deny (stay shut) or staff (stay shut, a person must check);
    reason: a short machine word (a contracts.Reason or status_<colour>), or for a server
    decision the server's own word, kept as it wrote it so the journal shows what it said;
    source: which verifier answered (server, cache, list, pass...; none when nobody knew it).
    """

    verdict: Verdict
    reason: str
    source: Source
    label: str = ""
    credential_id: str | None = None
    open_s: float | None = None  # None: the configured [door] open_s
    occupancy: ServerOccupancy | None = None  # a server grant's passage, alarm, lease_spend

    def __post_init__(self) -> None:
        if self.verdict not in STRICTNESS:
            raise ValueError(f"unknown verdict {self.verdict!r}")
        if self.source not in SOURCES:
            raise ValueError(f"unknown source {self.source!r}")
        if self.source != "server" and not is_reason(self.reason):
            raise ValueError(f"unknown reason {self.reason!r} from {self.source}")

    @property
    def granted(self) -> bool:
        return self.verdict == "grant"


def stricter(a: Verdict, b: Verdict) -> Verdict:
    return a if STRICTNESS[a] >= STRICTNESS[b] else b


class Verifier(Protocol):
    """Answers a Decision for a code, or None when it does not know the code."""

    def check(self, code_sha256: str, code: bytes, now: float) -> Decision | None: ...
