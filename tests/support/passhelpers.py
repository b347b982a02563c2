"""Shared pieces of the signed-pass tests: keys, a verifier on injected time, byte surgery."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import base45  # type: ignore[import-untyped]
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gate.passes import Claims, KeyRing, PassKey, RevocationStore, Window, kid_for
from gate.passes.keys import raw_public_key
from gate.verify.passes import PassPolicy, PassVerifier

BERLIN = ZoneInfo("Europe/Berlin")
# Monday 2026-06-01 12:00 in Berlin (CEST, UTC+2)
T = int(datetime(2026, 6, 1, 12, 0, tzinfo=BERLIN).timestamp())
DAY = 86400
SITE_KEY = bytes(range(32))
WEEKDAYS = 0b0011111


def make_key(seed: int) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32)


SIGNER = make_key(1)
OTHER = make_key(2)


def pass_key(sk: Ed25519PrivateKey, not_before: int = 0, not_after: int | None = None) -> PassKey:
    pub = raw_public_key(sk.public_key())
    return PassKey(kid_for(pub), pub, not_before, not_after)


def claims(**changes: object) -> Claims:
    base = Claims(pass_id=bytes.fromhex("a1b2c3d4e5f6"), sites=("hq",), kind="visitor",
                  valid_from=T - DAY, valid_until=T + DAY)
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def verifier(tmp_path: Path, keys: tuple[PassKey, ...] | None = None,
             synced_at: float | None = None, **policy: object) -> PassVerifier:
    ring = KeyRing(keys if keys is not None else (pass_key(SIGNER),), synced_at)
    store = RevocationStore(tmp_path / "revoked.db")
    pol = PassPolicy(**{"site": "hq", "tz": BERLIN, **policy})  # type: ignore[arg-type]
    return PassVerifier(lambda: ring, lambda: {"hq": SITE_KEY}, store, pol, clock=lambda: T)


def cose(text: str) -> bytearray:
    return bytearray(base45.b45decode(text[4:]))


def text_of(raw: bytes | bytearray) -> str:
    return "GP1:" + base45.b45encode(bytes(raw)).decode()


__all__ = ["BERLIN", "T", "DAY", "SITE_KEY", "WEEKDAYS", "SIGNER", "OTHER", "Window",
           "make_key", "pass_key", "claims", "verifier", "cose", "text_of"]
