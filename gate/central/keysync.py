"""Signed-pass material from the central server, off the door path: the issuer keys and this
site's rotation key (`GET /v1/keys`, with ETag) and the revoked pass ids (`GET
/v1/revocations` by cursor). Replies are hostile input: each is checked whole against the
contract before anything is kept, so an unusable reply leaves the key ring, the rotation
keys and the revocation set exactly as they were."""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..passes.keys import KeyRing, KeysFileError, load_keys_file, parse_keys
from ..passes.revocations import RevocationStore
from ..worker import Worker
from .client import ServerClient
from .replies import SYNC_REPLY_MAX, ServerUnavailable, an_object, required

log = logging.getLogger(__name__)

KEYS_REPLY_MAX = 256 * 1024        # 64 keys and a few rotation keys are a few KiB
MAX_SITES = 16
SITE_NAME = re.compile(r"^[\x21-\x7e][\x20-\x7e]{0,63}$")
B64URL_32 = re.compile(r"^[A-Za-z0-9_-]{43}$")
PASS_ID_HEX = re.compile(r"^(?:[0-9a-f]{2}){1,64}$")
MAX_CURSOR_CHARS = 256
STATE_FILE = "pass_keys.json"      # 0600: holds the site rotation keys


@dataclass(frozen=True)
class KeysState:
    """What a good /v1/keys sync left: the ring (its synced_at is the last good sync), the
    site rotation keys and the ETag to send next time."""

    ring: KeyRing
    rotation_keys: Mapping[str, bytes] = field(default_factory=dict)
    etag: str | None = None


def parse_keys_reply(data: Any, synced_at: float) -> tuple[KeyRing, dict[str, bytes]]:
    """A /v1/keys body, all or nothing; anything off is ServerUnavailable("bad_reply")."""
    data = an_object(data)
    keys = required(data, "keys", list)
    rotation = required(data, "rotation_keys", dict)
    try:  # the one parser a keys file goes through too; re-dumped so it sees only `keys`
        ring = parse_keys(json.dumps({"keys": keys}), "/v1/keys", synced_at)
    except KeysFileError as exc:
        raise ServerUnavailable("bad_reply", exc.problems[0][:200]) from None
    if len(rotation) > MAX_SITES:
        raise ServerUnavailable("bad_reply", f"rotation_keys: more than {MAX_SITES} sites")
    site_keys: dict[str, bytes] = {}
    for site, value in rotation.items():
        if not SITE_NAME.match(site):
            raise ServerUnavailable("bad_reply", "rotation_keys: a site name is not printable "
                                    "ASCII of 1..64 characters")
        if type(value) is not str or not B64URL_32.match(value):  # never echo a key
            raise ServerUnavailable("bad_reply", "rotation_keys: a key is not 43 base64url "
                                    "characters (32 bytes)")
        site_keys[site] = base64.urlsafe_b64decode(value + "=")
    return ring, site_keys


@dataclass(frozen=True)
class RevocationPage:
    cursor: str
    full: bool
    revoked: list[bytes]
    unrevoked: list[bytes]


def _ids(data: dict[str, Any], key: str) -> list[bytes]:
    items = required(data, key, list)
    out: list[bytes] = []
    for item in items:
        if type(item) is not str or not PASS_ID_HEX.match(item):
            raise ServerUnavailable("bad_reply", f"{key}: an id is not 1..64 bytes of "
                                    "lowercase hex")
        out.append(bytes.fromhex(item))
    return out


def parse_revocations(data: Any) -> RevocationPage:
    data = an_object(data)
    cursor = required(data, "cursor", str)
    if not cursor or len(cursor) > MAX_CURSOR_CHARS or not cursor.isprintable():
        raise ServerUnavailable("bad_reply", "cursor: not 1..256 printable characters")
    return RevocationPage(cursor=cursor, full=required(data, "full", bool),
                          revoked=_ids(data, "revoked"), unrevoked=_ids(data, "unrevoked"))


class PassKeys:
    """The key ring and rotation keys the PassVerifier reads (any thread), and their copy in
    state_dir: synced keys survive a restart (an offline gate keeps verifying, and ages them
    from the last good sync). Before any sync, or without a server, the keys file's ring."""

    def __init__(self, state_dir: Path, keys_file: Path | None) -> None:
        self.path = state_dir / STATE_FILE
        self._lock = threading.Lock()
        self._file_ring = KeyRing(()) if keys_file is None else load_keys_file(keys_file)
        self.state = self._load() or KeysState(self._file_ring)

    def ring(self) -> KeyRing:
        return self.state.ring

    def rotation_keys(self) -> Mapping[str, bytes]:
        return self.state.rotation_keys

    def _load(self) -> KeysState | None:
        try:
            doc = json.loads(self.path.read_text("utf-8"))
            ring, rotation = parse_keys_reply({"keys": doc["keys"],
                                               "rotation_keys": doc["rotation_keys"]},
                                              float(doc["synced_at"]))
            etag = doc.get("etag")
            return KeysState(ring, rotation, etag if isinstance(etag, str) else None)
        except FileNotFoundError:
            return None
        except Exception as exc:  # a damaged copy: the next sync writes a good one
            log.warning("pass keys: %s unusable (%s); using the keys file until the next "
                        "sync", self.path, type(exc).__name__)
            return None

    def replace(self, state: KeysState) -> None:
        """Keep a good sync: write the copy (0600, atomically), then swap the ring."""
        assert state.ring.synced_at is not None
        doc = {"synced_at": state.ring.synced_at, "etag": state.etag,
               "keys": [k.to_json() for k in state.ring.keys],
               "rotation_keys": {s: base64.urlsafe_b64encode(k).rstrip(b"=").decode()
                                 for s, k in state.rotation_keys.items()}}
        with self._lock:
            tmp = self.path.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                os.fchmod(fh.fileno(), 0o600)  # also when tmp was left by an older run
                json.dump(doc, fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
            self.state = state


class PassSync(Worker):
    """Every `interval_s`: /v1/keys (If-None-Match; a 304 counts as a good sync), then
    /v1/revocations after the stored cursor (a full set replaces, a delta updates, each in
    one transaction with its cursor)."""

    name = "pass-sync"

    def __init__(self, client: ServerClient, keys: PassKeys, revocations: RevocationStore,
                 interval_s: float, clock: Any = time.time) -> None:
        super().__init__()
        self.client = client
        self.keys = keys
        self.revocations = revocations
        self.interval_s = interval_s
        self.clock = clock
        self.reachable: bool | None = None
        self.last_error: str | None = None

    def sync_keys(self) -> bool:
        """One /v1/keys pull; True if the ring changed. Raises ServerUnavailable."""
        etag = self.keys.state.etag
        headers = {"If-None-Match": etag} if etag else {}
        server = self.client.server
        reply = self.client._exchange(
            "GET", "/v1/keys", KEYS_REPLY_MAX, time.monotonic() + server.sync_timeout_s,
            allow_304=True, headers=headers,
            timeout=(server.timeout_s * 4, server.sync_timeout_s))
        now = self.clock()
        old = self.keys.state
        if reply.status == 304:
            if etag is None or old.ring.synced_at is None:  # we asked for the whole list
                raise ServerUnavailable("bad_reply", "304 without a synced key list")
            ring = KeyRing(old.ring.keys, now)
            self.keys.replace(KeysState(ring, old.rotation_keys, etag))
            return False
        ring, rotation = parse_keys_reply(reply.data, now)
        new_etag = reply.headers.get("ETag")
        self.keys.replace(KeysState(ring, rotation, new_etag if new_etag and
                                    len(new_etag) <= 256 else None))
        changed = ring.keys != old.ring.keys or dict(rotation) != dict(old.rotation_keys)
        if changed:  # kids and site names only: the rotation keys are secrets
            log.info("pass keys: %d issuer keys (%s); rotation keys for %s", len(ring.keys),
                     ", ".join(k.kid.hex() for k in ring.keys) or "none",
                     ", ".join(sorted(rotation)) or "no site")
        return changed

    def sync_revocations(self) -> RevocationPage:
        cursor = self.revocations.cursor
        server = self.client.server
        reply = self.client._exchange(
            "GET", "/v1/revocations", SYNC_REPLY_MAX, time.monotonic() + server.sync_timeout_s,
            params={"since": cursor} if cursor else {},
            timeout=(server.timeout_s * 4, server.sync_timeout_s))
        page = parse_revocations(reply.data)
        if page.full:
            self.revocations.replace(page.revoked, page.cursor)
        else:
            self.revocations.update(page.revoked, page.unrevoked, page.cursor)
        if page.full or page.revoked or page.unrevoked:
            log.info("revocations: %s, +%d -%d, %d revoked now", "full set" if page.full
                     else "delta", len(page.revoked), len(page.unrevoked),
                     self.revocations.count())
        return page

    def sync_once(self) -> None:
        self.sync_keys()
        self.sync_revocations()

    def run_once(self) -> float:
        try:
            self.sync_once()
            if self.last_error:
                log.info("pass sync: server reachable again")
            self.last_error, self.reachable = None, True
        except ServerUnavailable as exc:
            if str(exc) != self.last_error:
                log.warning("pass sync: server unavailable (%s); keeping keys and "
                            "revocations", exc)
            self.last_error, self.reachable = str(exc), False
        return self.interval_s
