"""Secrets: gate tokens (stored as SHA-256), admin passwords (argon2id), and pass codes and
page tokens derived from a server secret kept outside the database."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

SECRET_BYTES = 32
CODE_BYTES = 20   # 160 bits, 32 base32 characters: a version 2 QR code at ECC M
PAGE_BYTES = 20


class SecretError(ValueError):
    """The pass secret file is missing, unreadable or not the one this database was made with."""


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def new_gate_token() -> str:
    """256 random bits; high entropy is why a plain SHA-256 is enough to store it."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return sha256_hex(token.encode("utf-8"))


def same_hash(a: str, b: str) -> bool:
    # compare_digest: timing must not reveal how much of a guess matched.
    return hmac.compare_digest(a.encode("ascii", "replace"), b.encode("ascii", "replace"))


def write_private(path: Path, text: str) -> None:
    """Create a new file readable by its owner only; never overwrite one."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


def create_secret(path: Path) -> bool:
    """Make the pass secret if it does not exist yet; True when a new one was written."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    write_private(path, secrets.token_hex(SECRET_BYTES) + "\n")
    return True


def load_secret(path: Path) -> bytes:
    try:
        text = path.read_text(encoding="ascii").strip()
    except OSError as exc:
        raise SecretError(f"secret file {path}: {exc.strerror}; run `gate-server init`") from None
    except UnicodeDecodeError:
        raise SecretError(f"secret file {path}: not hex text") from None
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise SecretError(f"secret file {path}: not hex text") from None
    if len(raw) < 16:
        raise SecretError(f"secret file {path}: shorter than 128 bits")
    return raw


def _b32(raw: bytes) -> str:
    return base64.b32encode(raw).decode("ascii").rstrip("=")


def _derive(secret: bytes, purpose: str, pass_id: str, size: int) -> bytes:
    return hmac.new(secret, f"{purpose}\x00{pass_id}".encode(), hashlib.sha256).digest()[:size]


def pass_code(secret: bytes, pass_id: str) -> str:
    """The QR payload of a plain pass: re-derivable, so the database never holds it."""
    return _b32(_derive(secret, "code", pass_id, CODE_BYTES))


def page_token(secret: bytes, pass_id: str) -> str:
    """The holder page's URL token: unguessable, and not the pass code."""
    return _b32(_derive(secret, "page", pass_id, PAGE_BYTES)).lower()


def secret_check(secret: bytes) -> str:
    """Stored in the database so a server started with the wrong secret file refuses to run."""
    return hmac.new(secret, b"gate-server secret check", hashlib.sha256).hexdigest()[:16]


def password_hasher(cheap: bool = False) -> PasswordHasher:
    if cheap:  # tests only: argon2's smallest parameters
        from argon2 import profiles
        return PasswordHasher.from_parameters(profiles.CHEAPEST)
    return PasswordHasher()


def verify_password(hasher: PasswordHasher, stored: str, password: str) -> bool:
    try:
        return hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False
