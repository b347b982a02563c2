"""Verification: each verifier answers a Decision or None ("don't know"); the chain asks
them in order and denies what nobody knows."""

from __future__ import annotations

from collections.abc import Sequence

from .decision import Decision, Verifier
from .local import StoreVerifier, judge

__all__ = ["Decision", "Verifier", "VerifierChain", "StoreVerifier", "judge"]


class VerifierChain:
    """Asks each verifier in turn; the first that knows the code decides."""

    def __init__(self, verifiers: Sequence[Verifier]) -> None:
        self.verifiers = list(verifiers)

    def check(self, code_sha256: str, code: bytes, now: float) -> Decision:
        for verifier in self.verifiers:
            decision = verifier.check(code_sha256, code, now)
            if decision is not None:
                return decision
        return Decision(verdict="deny", reason="unknown", source="none")
