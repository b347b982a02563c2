"""Verifiers over the local credential store: the allowlist (`list`) and the synced cache."""

from __future__ import annotations

import dataclasses

from ..contracts import Source
from .credentials import Credential, CredentialStore
from .decision import Decision


def judge(cred: Credential, now: float, source: Source) -> Decision:
    """Apply a credential's revocation and validity window at wall-clock time `now`."""
    ok = Decision(verdict="grant", reason="ok", source=source, label=cred.label,
                  credential_id=cred.cred_id)
    if cred.revoked:
        return dataclasses.replace(ok, verdict="deny", reason="revoked")
    if cred.valid_from is not None and now < cred.valid_from:
        return dataclasses.replace(ok, verdict="deny", reason="not_yet_valid")
    if cred.valid_until is not None and now >= cred.valid_until:
        return dataclasses.replace(ok, verdict="deny", reason="expired")
    return ok

class StoreVerifier:
    """Knows the codes that one origin ("list" or "server") put in the credential store."""

    def __init__(self, store: CredentialStore, origin: str, source: Source) -> None:
        self.store = store
        self.origin = origin
        self.source = source

    def check(self, code_sha256: str, code: bytes, now: float) -> Decision | None:
        cred = self.store.lookup(code_sha256, self.origin)
        return None if cred is None else judge(cred, now, self.source)
