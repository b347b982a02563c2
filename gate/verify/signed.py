"""Signed passes in the gate's chain: the offline PassVerifier built from plain values, with
the site learned from the key sync, and the server's answers to ``GP1:`` codes carrying the
pass id for the journal (the server's ``credential_id`` of a signed pass is its id)."""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Callable, Mapping
from datetime import tzinfo

from ..passes.keys import KeyRing
from .decision import Decision, Verifier
from .passes import PREFIX_BYTES, PassDecision, PassPolicy, PassVerifier, Revocations

PASS_ID_HEX = re.compile(r"^(?:[0-9a-f]{2}){1,64}$")


class SitePasses:
    """A PassVerifier whose site is `[passes] site`, or else the one site whose rotation key
    the server sent (a gate's token belongs to one site). No site known: every pass is
    `wrong_site`, never a guess."""

    def __init__(self, keys: Callable[[], KeyRing],
                 rotation_keys: Callable[[], Mapping[str, bytes]], revocations: Revocations,
                 site: str, tz: tzinfo, max_key_age_s: float, rotation_window_steps: int,
                 clock: Callable[[], float] = time.time) -> None:
        self.rotation_keys = rotation_keys
        self.site = site
        self.verifier = PassVerifier(keys, rotation_keys, revocations,
                                     PassPolicy("", tz, max_key_age_s, rotation_window_steps),
                                     clock=clock)

    def reconfigure(self, site: str, tz: tzinfo, max_key_age_s: float,
                    rotation_window_steps: int) -> None:
        self.site = site
        self.verifier.policy = PassPolicy("", tz, max_key_age_s, rotation_window_steps)

    def current_site(self) -> str:
        if self.site:
            return self.site
        sites = list(self.rotation_keys())
        return sites[0] if len(sites) == 1 else ""

    def check(self, code_sha256: str, code: bytes, now: float) -> Decision | None:
        if not code.startswith(PREFIX_BYTES):
            return None
        site = self.current_site()
        if site != self.verifier.policy.site:  # only the door thread calls check
            self.verifier.policy = dataclasses.replace(self.verifier.policy, site=site)
        return self.verifier.check(code_sha256, code, now)


class TagPassIds:
    """Wraps the server-first verifier: its decision on a ``GP1:`` code becomes a
    PassDecision whose pass_id is the server's credential_id (when it looks like a pass id;
    a hostile server cannot put anything else into the journal's pass_id)."""

    def __init__(self, inner: Verifier) -> None:
        self.inner = inner

    def check(self, code_sha256: str, code: bytes, now: float) -> Decision | None:
        decision = self.inner.check(code_sha256, code, now)
        if (decision is None or decision.source != "server"
                or not code.startswith(PREFIX_BYTES)):
            return decision
        cid = decision.credential_id
        pass_id = cid if cid is not None and PASS_ID_HEX.match(cid) else None
        fields = {f.name: getattr(decision, f.name) for f in dataclasses.fields(Decision)}
        return PassDecision(**fields, pass_id=pass_id)


def pass_fields(decision: Decision) -> dict[str, str]:
    """The journal's extra field for a pass decision: ``pass_id`` (never the payload)."""
    pass_id = getattr(decision, "pass_id", None)
    return {"pass_id": pass_id} if isinstance(pass_id, str) else {}
