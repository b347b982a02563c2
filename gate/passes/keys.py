"""Issuer public keys: the key list a gate verifies passes with, and its JSON file format.

File (``[passes] keys_file``, also what ``gate-server keys export`` writes)::

    {"keys": [{"kid": "1a2b3c4d", "public_key": "<base64url, no padding, raw 32 bytes>",
               "not_before": 1767225600, "not_after": 1798761600}]}

``not_after`` may be null (no end yet). Times are epoch seconds. A key verifies only passes
whose ``valid_from`` lies in [not_before, not_after): ``valid_from`` is the pass's signing
time as far as the gate can know, so a retired key keeps verifying the passes it signed while
in service and nothing newer. A pass without ``valid_from`` (valid from its signing) is
judged by signature and ``valid_until`` alone.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ..errors import GateError

KID_BYTES = 4          # short: the kid only picks a key among a handful, the signature decides
MAX_KEYS = 64
MAX_FILE_BYTES = 64 * 1024
B64URL_KEY = re.compile(r"^[A-Za-z0-9_-]{43}$")   # 32 bytes, unpadded
FIELDS = {"kid", "public_key", "not_before", "not_after"}
MAX_EPOCH = 2**40


class KeysFileError(GateError, ValueError):
    """The keys file is unusable; ``problems`` name file, entry and problem for each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


def kid_for(public_key: bytes) -> bytes:
    """The key id: the first bytes of SHA-256 over the raw 32-byte public key."""
    return hashlib.sha256(public_key).digest()[:KID_BYTES]


def raw_public_key(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


@dataclass(frozen=True)
class PassKey:
    """One issuer public key and the span of pass start times it may sign."""

    kid: bytes
    public_key: bytes
    not_before: int
    not_after: int | None = None

    def __post_init__(self) -> None:
        if len(self.public_key) != 32:
            raise ValueError("an Ed25519 public key is 32 bytes")
        if self.kid != kid_for(self.public_key):
            raise ValueError(f"kid {self.kid.hex()} is not {kid_for(self.public_key).hex()}, "
                             "the SHA-256 prefix of the public key")
        if self.not_after is not None and self.not_after <= self.not_before:
            raise ValueError("not_after must be after not_before")

    def covers(self, signed_at: int) -> bool:
        return self.not_before <= signed_at and (self.not_after is None
                                                 or signed_at < self.not_after)

    def to_json(self) -> dict[str, Any]:
        return {"kid": self.kid.hex(),
                "public_key": base64.urlsafe_b64encode(self.public_key).rstrip(b"=").decode(),
                "not_before": self.not_before, "not_after": self.not_after}


@dataclass(frozen=True)
class KeyRing:
    """The keys in force at a gate. ``synced_at`` is when they last came from the server
    (epoch seconds), None for a technician's file, which does not age."""

    keys: tuple[PassKey, ...]
    synced_at: float | None = None

    def __post_init__(self) -> None:
        kids = [k.kid for k in self.keys]
        if len(set(kids)) != len(kids):
            raise ValueError("two keys share a kid")

    def find(self, kid: bytes) -> PassKey | None:
        for key in self.keys:   # a handful of keys: a scan beats a dict's upkeep
            if key.kid == kid:
                return key
        return None


def dump_keys(keys: Iterable[PassKey]) -> str:
    return json.dumps({"keys": [k.to_json() for k in keys]}, indent=2) + "\n"


def _epoch(value: object, where: str, problems: list[str], nullable: bool) -> int | None:
    if value is None and nullable:
        return None
    if type(value) is not int or not 0 <= value <= MAX_EPOCH:
        problems.append(f"{where}: must be epoch seconds (an integer)"
                        + (" or null" if nullable else ""))
        return None
    return value


def _entry(item: object, where: str, problems: list[str]) -> PassKey | None:
    if type(item) is not dict:
        problems.append(f"{where}: must be an object")
        return None
    before = len(problems)
    if set(item) != FIELDS:
        extra, missing = sorted(set(item) - FIELDS), sorted(FIELDS - set(item))
        problems.append(f"{where}: " + "; ".join(
            ([f"unknown field {', '.join(extra)}"] if extra else [])
            + ([f"missing field {', '.join(missing)}"] if missing else [])))
        return None
    pub = item["public_key"]
    if type(pub) is not str or not B64URL_KEY.match(pub):
        problems.append(f"{where}.public_key: must be 43 base64url characters (32 bytes)")
    kid = item["kid"]
    if type(kid) is not str or not re.fullmatch(rf"[0-9a-f]{{{2 * KID_BYTES}}}", kid):
        problems.append(f"{where}.kid: must be {2 * KID_BYTES} lowercase hex digits")
    not_before = _epoch(item["not_before"], f"{where}.not_before", problems, nullable=False)
    not_after = _epoch(item["not_after"], f"{where}.not_after", problems, nullable=True)
    if len(problems) > before or not_before is None:
        return None
    raw = base64.urlsafe_b64decode(str(pub) + "=")
    try:
        Ed25519PublicKey.from_public_bytes(raw)
        return PassKey(bytes.fromhex(str(kid)), raw, not_before, not_after)
    except ValueError as exc:
        problems.append(f"{where}: {exc}")
        return None


def parse_keys(text: str, source: str = "<keys>", synced_at: float | None = None) -> KeyRing:
    """A KeyRing from the JSON text, or KeysFileError listing every problem. All or
    nothing: a half-loaded key list would deny some passes for no visible reason."""
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise KeysFileError([f"{source}: not JSON ({exc})"]) from None
    if type(doc) is not dict or set(doc) != {"keys"} or type(doc["keys"]) is not list:
        raise KeysFileError([f"{source}: must be an object with exactly one field, \"keys\" "
                             "(a list)"])
    if len(doc["keys"]) > MAX_KEYS:
        raise KeysFileError([f"{source}: more than {MAX_KEYS} keys"])
    problems: list[str] = []
    keys = [_entry(item, f"{source}: keys[{i}]", problems) for i, item in enumerate(doc["keys"])]
    good = [k for k in keys if k is not None]
    kids = [k.kid for k in good]
    for kid in sorted({k for k in kids if kids.count(k) > 1}):
        problems.append(f"{source}: kid {kid.hex()} appears more than once")
    if problems:
        raise KeysFileError(problems)
    return KeyRing(tuple(good), synced_at)


def load_keys_file(path: Path, synced_at: float | None = None) -> KeyRing:
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise KeysFileError([f"{path}: cannot read ({exc.strerror or exc})"]) from None
    if len(data) > MAX_FILE_BYTES:
        raise KeysFileError([f"{path}: larger than {MAX_FILE_BYTES} bytes"])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise KeysFileError([f"{path}: not UTF-8"]) from None
    return parse_keys(text, str(path), synced_at)
