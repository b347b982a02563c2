"""A gate's decision path built through its public surfaces: a TOML config loaded by
`load_config`, the allowlist loaded by `load_allowlist_into`, the chain by `build_chain`."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gate.config import Config, load_config
from gate.verify import VerifierChain, build_chain
from gate.verify.credentials import CredentialStore, load_allowlist_into

NOW = time.time()
DAY = 86400.0

# Enrolled text codes: ASCII, accented (NFC), long, and look-alikes of each other.
VALID_TEXT = ["GATE-ALICE-0001", "GATE-BOB-0002", "CAFÉ-Ünïcødé-7", "x", "0123456789" * 30,
              "https://pass.example.org/p/8f2c1e", "GP1:NCFOXN%TSMAHN-H", "ß-straße-1"]
EXPIRED_TEXT = ["GATE-OLD-0003", "GATE-ALICE-0000"]
FUTURE_TEXT = ["GATE-NEXT-0004"]
# Binary codes can only be enrolled by hash (the CSV holds text): one per awkward byte.
VALID_BINARY = [b"\x00GATE\x00", b"\xff\xfe\x00A\x00B", bytes(range(256)), b"\xc3\x28BAD-UTF8",
                b"\x1b[31mRED", bytes(2953)]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(epoch))


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(str(value))


def write_toml(path: Path, sections: dict[str, dict[str, Any]]) -> Path:
    lines = []
    for name, keys in sections.items():
        lines.append(f"[{name}]")
        lines += [f"{k} = {toml_value(v)}" for k, v in keys.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def scratch_dir() -> tempfile.TemporaryDirectory[str]:
    """Scratch space in RAM where there is some: the campaigns write many small SQLite files."""
    base = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    return tempfile.TemporaryDirectory(prefix="gate-fuzz-", dir=base)


def base_sections(root: Path, allowlist: Path) -> dict[str, dict[str, Any]]:
    return {"gate": {"id": "fuzz-gate", "state_dir": str(root / "state")},
            "camera": {"source": "files", "path": str(root / "frames")},
            "gpio": {"pin_factory": "mock"},
            "list": {"path": str(allowlist)}}


def write_enrolled_list(path: Path) -> Path:
    """One code_sha256 list: binary codes can only be listed by hash, and the text codes go
    the same way so every enrolled code is in one file, loaded once."""
    rows = ["code_sha256,label,valid_from,valid_until"]
    window = {"valid": (NOW - DAY, NOW + 365 * DAY), "expired": (NOW - 30 * DAY, NOW - DAY),
              "future": (NOW + DAY, NOW + 30 * DAY)}
    groups = [("valid", [c.encode() for c in VALID_TEXT] + VALID_BINARY),
              ("expired", [c.encode() for c in EXPIRED_TEXT]),
              ("future", [c.encode() for c in FUTURE_TEXT])]
    for label, codes in groups:
        start, end = window[label]
        rows += [f"{sha(c)},{label},{iso(start)},{iso(end)}" for c in codes]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


@dataclass
class World:
    root: Path
    cfg: Config
    store: CredentialStore
    chain: VerifierChain
    valid: set[bytes] = field(default_factory=set)     # exactly these bytes may be granted
    enrolled: list[bytes] = field(default_factory=list)  # every code in the store, any state

    def decide(self, code: bytes, now: float = NOW) -> str:
        return self.chain.check(sha(code), code, now).verdict


@contextlib.contextmanager
def list_world() -> Iterator[World]:
    """The offline decision path (no [server]) over the enrolled codes above."""
    with scratch_dir() as tmp:
        root = Path(tmp)
        allowlist = write_enrolled_list(root / "allow.csv")
        cfg = load_config(write_toml(root / "gate.toml", base_sections(root, allowlist)))
        store = CredentialStore(cfg.credentials_path)
        loaded = load_allowlist_into(store, allowlist)
        if loaded.problems:
            raise RuntimeError(f"the fuzz allowlist did not load cleanly: {loaded.problems}")
        world = World(root, cfg, store, build_chain(cfg, store, None))
        world.valid = {c.encode() for c in VALID_TEXT} | set(VALID_BINARY)
        world.enrolled = [c.encode() for c in VALID_TEXT + EXPIRED_TEXT + FUTURE_TEXT] + \
            VALID_BINARY
        try:
            yield world
        finally:
            store.close()
