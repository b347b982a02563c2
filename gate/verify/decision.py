"""The Decision value and the Verifier interface every verifier implements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ..contracts import Verdict as Verdict
from ..occupancy import ServerOccupancy

STRICTNESS: dict[str, int] = {"grant": 0, "staff": 1, "deny": 2}  # deny > staff > grant


@dataclass(frozen=True)
class Decision:
    """What to do with one presented code and why.

    verdict: grant (open), deny (stay shut) or staff (stay shut, a person must check);
    reason: a short machine word (ok, unknown, expired, not_yet_valid, revoked, status_red...);
    source: which verifier answered (server, cache, list; none when nobody knew the code).
    """

    verdict: Verdict
    reason: str
    source: str
    label: str = ""
    credential_id: str | None = None
    open_s: float | None = None  # None: the configured [door] open_s
    occupancy: ServerOccupancy | None = None  # a server grant's passage, alarm, lease_spend

    def __post_init__(self) -> None:
        if self.verdict not in STRICTNESS:
            raise ValueError(f"unknown verdict {self.verdict!r}")

    @property
    def granted(self) -> bool:
        return self.verdict == "grant"


def stricter(a: Verdict, b: Verdict) -> Verdict:
    return a if STRICTNESS[a] >= STRICTNESS[b] else b


class Verifier(Protocol):
    """Answers a Decision for a code, or None when it does not know the code."""

    def check(self, code_sha256: str, code: bytes, now: float) -> Decision | None: ...
