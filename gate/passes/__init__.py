"""Signed passes (format v1): ``GP1:`` + Base45(COSE_Sign1, Ed25519) over CBOR claims.

Shared by the server (issue) and the gate (verify offline); depends on nothing else of
the gate but its error root, so the server can import it without the gate's devices.
"""

from __future__ import annotations

from .claims import KINDS, Claims, Window
from .codec import PREFIX, issue, parse_text, signed_claims, verify_signature
from .errors import PassError
from .keys import KeyRing, KeysFileError, PassKey, dump_keys, kid_for, load_keys_file, parse_keys
from .revocations import RevocationStore
from .rotation import code_at, code_fresh, pass_secret
from .schedule import in_schedule

__all__ = ["KINDS", "Claims", "Window", "PREFIX", "issue", "parse_text", "signed_claims",
           "verify_signature", "PassError", "KeyRing", "KeysFileError", "PassKey", "dump_keys",
           "kid_for", "load_keys_file", "parse_keys", "RevocationStore", "code_at",
           "code_fresh", "pass_secret", "in_schedule"]
