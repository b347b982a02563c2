"""The signed-pass verifier: decides a ``GP1:`` code offline from public keys, the site's
rotation key and the revocation list; leaves every other code to the rest of the chain."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import tzinfo
from typing import Protocol

from ..contracts import Reason, Source
from ..passes.claims import Claims
from ..passes.codec import PREFIX, parse_text, signed_claims, verify_signature
from ..passes.errors import PassError
from ..passes.keys import KeyRing
from ..passes.rotation import code_fresh, pass_secret
from ..passes.schedule import in_schedule
from .decision import Decision

log = logging.getLogger(__name__)
SOURCE: Source = "pass"
PREFIX_BYTES = PREFIX.encode("ascii")


class Revocations(Protocol):
    """The revoked-id set: the gate's RevocationStore, or the server's database."""

    def revoked(self, pass_id: bytes) -> bool: ...


@dataclass(frozen=True)
class PassDecision(Decision):
    """A Decision that also names the pass (hex id) for the journal's ``pass_id``; None
    when the pass was never trusted enough to believe its id (bad format or signature)."""

    pass_id: str | None = None


@dataclass(frozen=True)
class PassPolicy:
    """Where this gate is and how strict it is about time."""

    site: str
    tz: tzinfo                       # the site's time zone, for schedules
    max_key_age_s: float = 7 * 86400  # 0: never stale (a technician's keys file)
    rotation_window_steps: int = 1


class PassVerifier:
    """Checks, in order: format, kid, signature, key age, validity, site, schedule,
    rotating code, revocation. Every failure is a deny with the first reason that applies;
    nothing a payload holds can raise out of ``decide``."""

    def __init__(self, keys: Callable[[], KeyRing], rotation_keys: Callable[[], Mapping[str, bytes]],
                 revocations: Revocations, policy: PassPolicy,
                 clock: Callable[[], float] = time.time) -> None:
        # keys and rotation keys are read through callables: a sync swaps them whole
        self.keys = keys
        self.rotation_keys = rotation_keys
        self.revocations = revocations
        self.policy = policy
        self.clock = clock

    def check(self, code_sha256: str, code: bytes, now: float) -> Decision | None:
        """The chain's Verifier interface: None for codes that are not signed passes."""
        if not code.startswith(PREFIX_BYTES):
            return None
        try:
            text = code.decode("ascii")
        except UnicodeDecodeError:
            return self._deny("bad_format", "not ASCII", code_sha256)
        return self.decide(text, now, code_sha256)

    def verify(self, text: str) -> Decision | None:
        """Decide at the injected clock's time."""
        if not text.startswith(PREFIX):
            return None
        return self.decide(text, self.clock(), "")

    def decide(self, text: str, now: float, code_sha256: str = "") -> Decision:
        if not math.isfinite(now) or now < 0:
            return self._deny("clock_invalid", "the clock gave no usable time", code_sha256)
        try:
            return self._decide(text, now)
        except PassError as exc:
            return self._deny(exc.reason, exc.detail, code_sha256, exc.pass_id)

    def _decide(self, text: str, now: float) -> Decision:
        presented = parse_text(text)
        envelope = presented.envelope
        ring = self.keys()
        key = ring.find(envelope.kid)
        if key is None:
            raise PassError("unknown_key", f"kid {envelope.kid.hex()} is not in the key list")
        if not verify_signature(envelope, key.public_key):
            raise PassError("bad_signature", f"signature does not verify with {key.kid.hex()}")
        claims = signed_claims(envelope)
        pid = claims.id_text
        if claims.valid_from is not None and not key.covers(claims.valid_from):
            raise _known(pid, "unknown_key", f"key {key.kid.hex()} was not in service when "
                         "this pass started")
        if (self.policy.max_key_age_s and ring.synced_at is not None
                and now - ring.synced_at > self.policy.max_key_age_s):
            raise _known(pid, "keys_stale", f"keys last synced {now - ring.synced_at:.0f} s ago")
        if claims.valid_from is not None and now < claims.valid_from:
            raise _known(pid, "not_yet_valid", "before valid_from")
        if now >= claims.valid_until:
            raise _known(pid, "expired", "at or after valid_until")
        if self.policy.site not in claims.sites:
            raise _known(pid, "wrong_site", f"pass is not for site {self.policy.site!r}")
        if claims.schedule and not in_schedule(claims.schedule, now, self.policy.tz):
            raise _known(pid, "outside_schedule", "outside the pass's weekly schedule")
        self._check_rotation(claims, presented.suffix, now)
        if self.revocations.revoked(claims.pass_id):
            raise _known(pid, "revoked", "pass id is on the revocation list")
        return PassDecision(verdict="grant", reason="ok", source=SOURCE,
                            label=f"{claims.kind} pass", pass_id=pid)

    def _check_rotation(self, claims: Claims, suffix: str | None, now: float) -> None:
        pid = claims.id_text
        if not claims.rotating:
            if suffix is not None:
                raise _known(pid, "bad_format", "a rotating code on a pass that does not rotate")
            return
        if suffix is None:
            raise _known(pid, "stale_code", "a rotating pass shown without its code")
        home = claims.sites[0]   # the secret is derived from the pass's first (home) site
        site_key = self.rotation_keys().get(home)
        if site_key is None:
            raise _known(pid, "unknown_key", f"no rotation key for site {home!r}")
        secret = pass_secret(site_key, claims.pass_id)
        if not code_fresh(secret, suffix, now, self.policy.rotation_window_steps):
            raise _known(pid, "stale_code", "rotating code is not current")

    def _deny(self, reason: str, detail: str, code_sha256: str,
              pass_id: str | None = None) -> Decision:
        # the detail helps a technician; it never contains the payload, only its hash
        log.info("pass denied (%s): %s code=%s pass_id=%s", reason, detail,
                 code_sha256[:12] or "-", pass_id or "-")
        return PassDecision(verdict="deny", reason=reason, source=SOURCE, pass_id=pass_id)


def _known(pass_id: str, reason: Reason, detail: str) -> PassError:
    """A PassError about a pass whose signature held, so its id may be journaled."""
    return PassError(reason, detail, pass_id)
