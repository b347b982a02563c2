"""The pass text: ``GP1:`` + Base45(COSE_Sign1 over the CBOR claims), Ed25519, ``kid`` in
the protected header, optionally followed by ``*`` + a rotating code. Issue and strict decode.

Decoding is split so that nothing from the claims is parsed before the signature holds:
``parse_text`` checks the envelope (prefix, size, Base45, COSE structure, headers), the
caller checks the kid and ``verify_signature``, and only then ``signed_claims``.
"""

from __future__ import annotations

import functools
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass

import base45  # type: ignore[import-untyped]
import cbor2
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from pycose.algorithms import EdDSA
from pycose.headers import KID, Algorithm
from pycose.keys.curves import Ed25519
from pycose.keys.okp import OKPKey
from pycose.messages.sign1message import Sign1Message

from .claims import Claims, encode_claims, parse_claims
from .errors import PassError
from .keys import KID_BYTES, kid_for, raw_public_key

PREFIX = "GP1:"
SUFFIX = re.compile(r"\*([0-9]{8})\Z")
SUFFIX_CHARS = 9
MAX_TEXT = 400            # chars; a version-9 code holds 189, so anything longer is junk
MAX_COSE = 256            # bytes after Base45
MAX_DEPTH = 4             # array > map/bstr > list: deeper nesting is never a pass
COSE_SIGN1_TAG = 18
ALG_EDDSA = -8
HDR_ALG, HDR_CRIT, HDR_KID = 1, 2, 4


@dataclass(frozen=True)
class Envelope:
    """A structurally valid COSE_Sign1, not yet trusted."""

    kid: bytes
    protected: bytes   # the header bytes exactly as signed
    payload: bytes
    signature: bytes


@dataclass(frozen=True)
class Presented:
    """What the camera read: the envelope and the rotating code after ``*``, if any."""

    envelope: Envelope
    suffix: str | None


def _strict_cbor(data: bytes, what: str) -> object:
    fp = io.BytesIO(data)
    try:
        value = cbor2.CBORDecoder(fp, max_depth=MAX_DEPTH, allow_indefinite=False,
                                  allow_duplicate_keys=False).decode()
    except Exception as exc:  # cbor2 raises many types on junk; all of them mean "not CBOR"
        raise PassError("bad_format", f"{what} is not valid CBOR ({type(exc).__name__})") from None
    if fp.tell() != len(data):
        raise PassError("bad_format", f"{len(data) - fp.tell()} bytes after the {what}")
    return value


def _protected_header(data: bytes) -> bytes:
    header = _strict_cbor(data, "protected header")
    if type(header) is not dict:
        raise PassError("bad_format", "protected header is not a map")
    if HDR_CRIT in header:
        # GP1 defines no critical extension, so any crit entry names one we cannot honour
        raise PassError("bad_format", "protected header has critical parameters")
    if set(header) != {HDR_ALG, HDR_KID}:
        raise PassError("bad_format", "protected header must hold exactly alg and kid")
    if type(header[HDR_ALG]) is not int or header[HDR_ALG] != ALG_EDDSA:
        raise PassError("bad_format", f"alg {header[HDR_ALG]!r} is not EdDSA (-8)")
    kid = header[HDR_KID]
    if type(kid) is not bytes or len(kid) != KID_BYTES:
        raise PassError("bad_format", f"kid must be {KID_BYTES} bytes")
    if cbor2.dumps(header, canonical=True) != data:
        # the signature covers these bytes; one meaning, one encoding
        raise PassError("bad_format", "protected header is not in canonical encoding")
    return kid


def decode_envelope(body: str) -> Envelope:
    """A COSE_Sign1 from the Base45 text after the prefix, checked for shape only."""
    try:
        raw: bytes = base45.b45decode(body)
    except (ValueError, TypeError):
        raise PassError("bad_format", "not Base45") from None
    if len(raw) > MAX_COSE:
        raise PassError("bad_format", f"COSE message longer than {MAX_COSE} bytes")
    message = _strict_cbor(raw, "COSE message")
    if isinstance(message, cbor2.CBORTag):
        if message.tag != COSE_SIGN1_TAG:
            raise PassError("bad_format", f"CBOR tag {message.tag} is not COSE_Sign1 (18)")
        message = message.value
    # inside a tag cbor2 hands arrays back as tuples and maps as frozendicts
    if not isinstance(message, (list, tuple)) or len(message) != 4:
        raise PassError("bad_format", "not a COSE_Sign1 array of four")
    protected: object = message[0]
    unprotected: object = message[1]
    payload: object = message[2]
    signature: object = message[3]
    if type(protected) is not bytes or type(payload) is not bytes or type(signature) is not bytes:
        raise PassError("bad_format", "COSE_Sign1 fields have the wrong types")
    if not isinstance(unprotected, Mapping) or len(unprotected) != 0:
        # unsigned headers could be swapped by anyone; GP1 has no use for them
        raise PassError("bad_format", "unprotected header is not empty")
    if len(signature) != 64:
        raise PassError("bad_format", "an Ed25519 signature is 64 bytes")
    return Envelope(_protected_header(protected), protected, payload, signature)


def parse_text(text: str) -> Presented:
    """Split and check a ``GP1:`` text. The ``*`` that starts a rotating code is also a
    Base45 character, so the last nine characters count as a suffix only when the text
    before them is a whole COSE message (CBOR is prefix-free: both cannot be)."""
    if len(text) > MAX_TEXT:
        raise PassError("bad_format", f"longer than {MAX_TEXT} characters")
    if not text.startswith(PREFIX):
        raise PassError("bad_format", f"does not start with {PREFIX}")
    body = text[len(PREFIX):]
    match = SUFFIX.search(body)
    if match is not None:
        try:
            return Presented(decode_envelope(body[:-SUFFIX_CHARS]), match.group(1))
        except PassError:
            pass
    return Presented(decode_envelope(body), None)


@functools.lru_cache(maxsize=64)
def _cose_key(public_key: bytes) -> OKPKey:
    return OKPKey(crv=Ed25519, x=public_key)


def verify_signature(envelope: Envelope, public_key: bytes) -> bool:
    """The Ed25519 signature over the COSE Sig_structure, checked by pycose."""
    message = Sign1Message(phdr={Algorithm: EdDSA, KID: envelope.kid}, payload=envelope.payload,
                           key=_cose_key(public_key))
    if message.phdr_encoded != envelope.protected:  # pycose re-encodes: must be the same bytes
        return False
    message.signature = envelope.signature
    try:
        return bool(message.verify_signature())
    except Exception:  # a key or signature pycose cannot use is simply not a valid signature
        return False


def signed_claims(envelope: Envelope) -> Claims:
    """The claims of an envelope whose signature has been verified."""
    return parse_claims(_strict_cbor(envelope.payload, "claims"))


def issue(claims: Claims, private_key: Ed25519PrivateKey) -> str:
    """The static pass text (without any rotating code) signed by ``private_key``."""
    kid = kid_for(raw_public_key(private_key.public_key()))
    d = private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    x = raw_public_key(private_key.public_key())
    message = Sign1Message(phdr={Algorithm: EdDSA, KID: kid}, payload=encode_claims(claims),
                           key=OKPKey(crv=Ed25519, d=d, x=x))
    # untagged: the GP1: prefix already says what follows, and the tag would cost a byte
    encoded: bytes = base45.b45encode(message.encode(tag=False))
    return PREFIX + encoded.decode("ascii")
