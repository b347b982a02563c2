"""Rotating codes: RFC 6238 TOTP (HMAC-SHA256, 30 s step, 8 digits, T0 = 0) whose secret is
HKDF-SHA256 of the site rotation key with the pass id.

Both primitives are in WebCrypto, so a holder's pass page can compute the code in the browser
from its per-pass secret (``crypto.subtle.importKey("raw", secret, {name: "HMAC", hash:
"SHA-256"})``, then ``sign`` over the 8-byte big-endian step counter, dynamic truncation per
RFC 4226, modulo 10^8). The page gets the derived per-pass secret, never the site key.
"""

from __future__ import annotations

import hmac

from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.twofactor.totp import TOTP

STEP_S = 30
DIGITS = 8
SECRET_BYTES = 32
MIN_SITE_KEY_BYTES = 16
HKDF_SALT = b"GP1 rotation"      # fixed: domain separation from any other use of the site key
HKDF_INFO_PREFIX = b"GP1 pass "


def pass_secret(site_key: bytes, pass_id: bytes) -> bytes:
    """The per-pass TOTP secret: HKDF-SHA256(ikm=site key, salt="GP1 rotation",
    info="GP1 pass " + pass id, 32 bytes)."""
    if len(site_key) < MIN_SITE_KEY_BYTES:
        raise ValueError(f"a site rotation key has at least {MIN_SITE_KEY_BYTES} bytes")
    hkdf = HKDF(algorithm=SHA256(), length=SECRET_BYTES, salt=HKDF_SALT,
                info=HKDF_INFO_PREFIX + pass_id)
    return hkdf.derive(site_key)


def _totp(secret: bytes) -> TOTP:
    return TOTP(secret, DIGITS, SHA256(), STEP_S)


def code_at(secret: bytes, at: float) -> str:
    """The 8-digit code shown at epoch second ``at``."""
    return _totp(secret).generate(max(0, int(at))).decode("ascii")


def code_fresh(secret: bytes, code: str, now: float, window_steps: int) -> bool:
    """Is ``code`` the code of the current step or of one within +-``window_steps``?
    Every candidate is compared in constant time and none ends the loop early, so timing
    says nothing about which step (if any) matched."""
    totp = _totp(secret)
    presented = code.encode("ascii")
    step = int(now) // STEP_S
    ok = False
    for offset in range(-window_steps, window_steps + 1):
        at = (step + offset) * STEP_S
        if at >= 0:
            ok |= hmac.compare_digest(totp.generate(at), presented)
    return ok
