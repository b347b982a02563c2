"""Verification: each verifier answers a Decision or None ("don't know"); the chain asks
them in order and denies what nobody knows."""

from __future__ import annotations

from collections.abc import Sequence

from ..clock import TrustedClock
from ..config import Config, LockoutSection
from .credentials import LIST, CredentialStore
from .decision import Decision, Verifier
from .local import StoreVerifier, judge
from .lockout import Lockout, LockoutRule
from .online import CacheVerifier, ServerCheck, ServerFirst

__all__ = ["Decision", "Verifier", "VerifierChain", "StoreVerifier", "judge", "build_chain",
           "Lockout", "lockout_rule"]


class VerifierChain:
    """Asks each verifier in turn; the first that knows the code decides.

    With a `clock`, the `now` given to check() is a wall clock reading that the trusted clock
    turns into trusted time (never earlier than the gate's high-water mark), so validity and
    cache age cannot be rolled back. With a `lockout`, a locked scanner denies `locked_out`
    before any verifier is asked, and every decision is counted.
    """

    def __init__(self, verifiers: Sequence[Verifier], clock: TrustedClock | None = None,
                 lockout: Lockout | None = None) -> None:
        self.verifiers = list(verifiers)
        self.clock = clock
        self.lockout = lockout

    def check(self, code_sha256: str, code: bytes, now: float) -> Decision:
        if self.lockout is not None:
            refused = self.lockout.refuse()
            if refused is not None:
                return refused
        if self.clock is not None:
            now = self.clock.trusted(now)
        decision = self._ask(code_sha256, code, now)
        if self.lockout is not None:
            self.lockout.record(decision)
        return decision

    def _ask(self, code_sha256: str, code: bytes, now: float) -> Decision:
        for verifier in self.verifiers:
            decision = verifier.check(code_sha256, code, now)
            if decision is not None:
                return decision
        return Decision(verdict="deny", reason="unknown", source="none")


def lockout_rule(section: LockoutSection) -> LockoutRule:
    return LockoutRule(section.max_denials, section.window_s, section.cooldown_s)


def build_chain(cfg: Config, store: CredentialStore, online: ServerCheck | None, *,
                clock: TrustedClock | None = None, lockout: Lockout | None = None,
                passes: Verifier | None = None) -> VerifierChain:
    """Verifiers in the order they are asked: the server when it answers; offline, per
    [policy] offline, either a denial or the synced cache and then the technician's list.
    The lockout comes before all of them (a locked scanner asks nobody); `clock` and `lockout`
    are the daemon's, kept across reloads. `passes` (signed GP1 codes) decides offline, after
    the server and before the cache; a server's answer to a GP1 code carries its pass id."""
    from .signed import TagPassIds
    verifiers: list[Verifier] = []
    if online is not None:
        verifiers.append(TagPassIds(ServerFirst(online, cfg.policy.offline)))
    if passes is not None:
        verifiers.append(passes)
    if online is not None:
        verifiers.append(CacheVerifier(store, cfg.policy.max_cache_age_s, cfg.policy.status))
    verifiers.append(StoreVerifier(store, LIST, source="list"))
    return VerifierChain(verifiers, clock=clock, lockout=lockout)
