"""Pass signing: the server's Ed25519 keys (sealed in the database), key rotation and export,
the per-site rotation keys, and the GP1 text of a signed pass at any moment."""

from __future__ import annotations

import hashlib
import hmac
import os
from datetime import datetime

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from sqlalchemy import select
from sqlalchemy.orm import Session

from gate.passes import Claims, KeyRing, PassKey, code_at, issue, kid_for, pass_secret
from gate.passes.keys import raw_public_key

from ..core import security
from ..db.models import Pass, SigningKey, Site

NONCE_BYTES = 12
SEAL_INFO = b"gate-server signing key seal v1"
SITE_KEY_PURPOSE = b"gate-server site rotation key v1\x00"


class SigningKeyError(security.SecretError):
    """A sealed signing key does not open with this secret (wrong secret file)."""


def _seal_key(secret: bytes) -> AESGCM:
    hkdf = HKDF(algorithm=SHA256(), length=32, salt=None, info=SEAL_INFO)
    return AESGCM(hkdf.derive(secret))


def _seal(secret: bytes, kid: str, raw_private: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    # the kid is the associated data: a sealed key moved to another row does not open
    return nonce + _seal_key(secret).encrypt(nonce, raw_private, kid.encode("ascii"))


def unseal(secret: bytes, row: SigningKey) -> Ed25519PrivateKey:
    blob = bytes(row.private_sealed)
    try:
        raw = _seal_key(secret).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:],
                                        row.kid.encode("ascii"))
    except InvalidTag:
        raise SigningKeyError(f"signing key {row.kid} does not open with this secret file") from None
    key = Ed25519PrivateKey.from_private_bytes(raw)
    if raw_public_key(key.public_key()) != bytes(row.public_key):
        raise SigningKeyError(f"signing key {row.kid}: private and public halves differ")
    return key


def _new_key(session: Session, secret: bytes, now: datetime) -> SigningKey:
    key = Ed25519PrivateKey.generate()
    public = raw_public_key(key.public_key())
    kid = kid_for(public).hex()
    if session.get(SigningKey, kid) is not None:  # 1 in 4 billion: just draw again
        return _new_key(session, secret, now)
    raw = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    row = SigningKey(kid=kid, public_key=public, private_sealed=_seal(secret, kid, raw),
                     created_at=now, retired_at=None)
    session.add(row)
    session.flush()
    return row


def active_key(session: Session, secret: bytes, now: datetime) -> SigningKey:
    """The key new passes are signed with; made on first use."""
    row = session.scalar(select(SigningKey).where(SigningKey.retired_at.is_(None))
                         .order_by(SigningKey.created_at.desc(), SigningKey.kid).limit(1))
    return row if row is not None else _new_key(session, secret, now)


def rotate(session: Session, secret: bytes, now: datetime) -> tuple[SigningKey, list[str]]:
    """A new signing key; the old ones retire (they sign nothing more) but stay in the key
    list, so every pass they signed keeps verifying until it expires."""
    retired = []
    for row in session.scalars(select(SigningKey).where(SigningKey.retired_at.is_(None))):
        unseal(secret, row)  # refuse to rotate under the wrong secret: nothing could sign
        row.retired_at = now
        retired.append(row.kid)
    return _new_key(session, secret, now), retired


def public_keys(session: Session) -> KeyRing:
    """Every key, as gates load them. not_before is the key's creation: a pass carries a
    valid_from only when it starts after signing, so that start is never before its key.
    not_after stays open: a retired key's passes may start after it retired."""
    rows = session.scalars(select(SigningKey).order_by(SigningKey.created_at, SigningKey.kid))
    return KeyRing(tuple(PassKey(bytes.fromhex(r.kid), bytes(r.public_key),
                                 int(_epoch(r.created_at)), None) for r in rows))


def site_rotation_key(secret: bytes, site: Site) -> bytes:
    """Per site, derived from the server secret and the site's random epoch (so it never
    needs storing, and differs between databases)."""
    return hmac.new(secret, SITE_KEY_PURPOSE + site.epoch.encode("ascii"),
                    hashlib.sha256).digest()


def _epoch(value: datetime) -> float:
    from ..core.timeutil import as_utc
    return as_utc(value).timestamp()


def claims_of(row: Pass, site: Site) -> Claims:
    if row.claim_until is None:
        raise ValueError(f"pass {row.id} is not a signed pass")
    return Claims(pass_id=bytes.fromhex(row.id), sites=(site.name,), kind=row.kind,
                  valid_from=row.claim_from, valid_until=row.claim_until,
                  rotating=row.rotating)


def static_text(session: Session, secret: bytes, row: Pass) -> str:
    """The signed pass text, signed again by its own key: Ed25519 signatures are
    deterministic, so this is the very text issued, without the database ever holding it."""
    key = session.get(SigningKey, row.kid or "")
    site = session.get(Site, row.site_id)
    if key is None or site is None:
        raise ValueError(f"pass {row.id}: its signing key or site is gone")
    return issue(claims_of(row, site), unseal(secret, key))


def holder_secret(secret: bytes, site: Site, row: Pass) -> bytes:
    """The per-pass TOTP secret the holder's page gets (never the site key itself)."""
    return pass_secret(site_rotation_key(secret, site), bytes.fromhex(row.id))


def shown_text(session: Session, secret: bytes, row: Pass, at: float) -> str:
    """What the pass shows at epoch second ``at``: rotating passes add ``*`` + the code."""
    text = static_text(session, secret, row)
    if not row.rotating:
        return text
    site = session.get(Site, row.site_id)
    assert site is not None  # static_text checked it
    return f"{text}*{code_at(holder_secret(secret, site, row), at)}"
