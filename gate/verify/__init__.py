"""Verification: each verifier answers a Decision or None ("don't know"); the chain asks
them in order and denies what nobody knows."""

from __future__ import annotations

from collections.abc import Sequence

from ..config import Config
from ..credentials import LIST, CredentialStore
from .decision import Decision, Verifier
from .local import StoreVerifier, judge
from .online import CacheVerifier, OnlineVerifier, ServerFirst

__all__ = ["Decision", "Verifier", "VerifierChain", "StoreVerifier", "judge", "build_chain"]


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


def build_chain(cfg: Config, store: CredentialStore, online: OnlineVerifier | None
                ) -> VerifierChain:
    """Verifiers in the order they are asked: the server when it answers; offline, per
    [policy] offline, either a denial or the synced cache and then the technician's list."""
    verifiers: list[Verifier] = []
    if online is not None:
        verifiers.append(ServerFirst(online, cfg.policy.offline))
        verifiers.append(CacheVerifier(store, cfg.policy.max_cache_age_s, cfg.policy.status))
    verifiers.append(StoreVerifier(store, LIST, source="list"))
    return VerifierChain(verifiers)
