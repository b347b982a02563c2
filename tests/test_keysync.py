"""The keys + revocations sync against a real HTTP server on 127.0.0.1 (tests/badserver.py):
good replies are kept (0600 copy, ETag, cursor, delta), and hostile ones (wrong types, junk
base64, bad ids, huge, garbage) never change the key ring, the rotation keys or the set."""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from gate.central.client import ServerClient
from gate.central.keysync import KEYS_REPLY_MAX, PassKeys, PassSync
from gate.central.replies import ServerUnavailable
from gate.config import ServerSection
from gate.passes import RevocationStore
from tests.support.badserver import BadServer
from tests.support.passhelpers import OTHER, SIGNER, pass_key

SITE_KEY_B64 = base64.urlsafe_b64encode(bytes(range(32))).rstrip(b"=").decode()
KEYS = {"keys": [pass_key(SIGNER).to_json()], "rotation_keys": {"hq": SITE_KEY_B64}}
REVS = {"cursor": "c1", "full": True, "revoked": ["a1b2c3d4e5"], "unrevoked": []}


def serve(server: BadServer, doc: Any, status: int = 200, **headers: str) -> None:
    body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    server.mode, server.reply, server.reply_headers = "custom", (
        status, "application/json", body), dict(headers)


def worker(server: BadServer, tmp_path: Path) -> PassSync:
    client = ServerClient(ServerSection(url=server.url, timeout_s=1.0, sync_timeout_s=5),
                          "gate-1", "token")
    keys = PassKeys(tmp_path, None)
    return PassSync(client, keys, RevocationStore(tmp_path / "rev.db"), 60, clock=lambda: 1000.0)


def snapshot(sync: PassSync) -> tuple[Any, ...]:
    st = sync.keys.state
    return (st.ring, dict(st.rotation_keys), sync.revocations.cursor,
            sync.revocations.count(), (sync.keys.path.read_bytes()
                                       if sync.keys.path.exists() else None))


def test_good_sync_keeps_keys_0600_then_etag_304_and_revocation_delta(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with BadServer() as server:
        sync = worker(server, tmp_path)
        serve(server, KEYS, ETag='"k1"')
        assert sync.sync_keys() is True
        st = sync.keys.state
        assert [k.kid for k in st.ring.keys] == [pass_key(SIGNER).kid]
        assert st.ring.synced_at == 1000.0 and st.rotation_keys == {"hq": bytes(range(32))}
        assert sync.keys.path.stat().st_mode & 0o777 == 0o600
        assert PassKeys(tmp_path, None).state == st          # survives a restart
        serve(server, b"", 304)
        sync.clock = lambda: 2000.0
        assert sync.sync_keys() is False
        assert sync.keys.state.ring.synced_at == 2000.0      # a 304 is a good sync too
        serve(server, REVS)
        sync.sync_revocations()
        assert sync.revocations.revoked(bytes.fromhex("a1b2c3d4e5"))
        serve(server, {"cursor": "c2", "full": False, "revoked": ["ff00"],
                       "unrevoked": ["a1b2c3d4e5"]})
        sync.sync_revocations()
        assert sync.revocations.cursor == "c2"
        assert not sync.revocations.revoked(bytes.fromhex("a1b2c3d4e5"))
        assert sync.revocations.revoked(bytes.fromhex("ff00"))
    assert SITE_KEY_B64 not in caplog.text                  # never logged


def _with(doc: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**doc, **changes}


HOSTILE_KEYS: list[Any] = [
    b"<html>not json", [], {"keys": KEYS["keys"]},                    # rotation_keys missing
    _with(KEYS, keys="x"), _with(KEYS, keys=[{"kid": 1}]),
    _with(KEYS, keys=[dict(KEYS["keys"][0], public_key="!" * 43)]),  # junk base64
    _with(KEYS, keys=[dict(KEYS["keys"][0], kid="00000000")]),       # kid not the key's
    _with(KEYS, keys=[dict(KEYS["keys"][0], not_before=True)]),
    _with(KEYS, keys=[KEYS["keys"][0]] * 2),                         # duplicate kid
    _with(KEYS, rotation_keys=[]), _with(KEYS, rotation_keys={"hq": 5}),
    _with(KEYS, rotation_keys={"hq": "c2hvcnQ"}),                    # 5 bytes
    _with(KEYS, rotation_keys={"hq": SITE_KEY_B64[:-1] + "="}),
    _with(KEYS, rotation_keys={"\x00": SITE_KEY_B64}),
    _with(KEYS, rotation_keys={f"s{i}": SITE_KEY_B64 for i in range(17)}),
    _with(KEYS, keys=[pass_key(OTHER).to_json()] * 0 + [{"x": 1}] * 65),
    b'{"keys": [], "rotation_keys": {}, "pad": "' + b"x" * KEYS_REPLY_MAX + b'"}',  # huge
    b"", b'{"keys": [' * 5000,
]


@pytest.mark.parametrize("doc", HOSTILE_KEYS, ids=range(len(HOSTILE_KEYS)))
def test_hostile_keys_reply_keeps_the_ring(tmp_path: Path, doc: Any) -> None:
    with BadServer() as server:
        sync = worker(server, tmp_path)
        serve(server, KEYS, ETag='"k1"')
        sync.sync_keys()
        before = snapshot(sync)
        serve(server, doc)
        with pytest.raises(ServerUnavailable):
            sync.sync_keys()
        assert snapshot(sync) == before


def test_304_without_an_etag_sent_is_refused(tmp_path: Path) -> None:
    with BadServer() as server:
        sync = worker(server, tmp_path)
        serve(server, b"", 304)
        with pytest.raises(ServerUnavailable):
            sync.sync_keys()
        assert sync.keys.state.ring.synced_at is None and not sync.keys.path.exists()


HOSTILE_REVS: list[Any] = [
    b"garbage", _with(REVS, full="true"), _with(REVS, cursor=5), _with(REVS, cursor=""),
    _with(REVS, cursor="x" * 300), _with(REVS, revoked="a1"), _with(REVS, revoked=[1]),
    _with(REVS, revoked=["A1B2"]), _with(REVS, revoked=["abc"]), _with(REVS, revoked=["zz"]),
    _with(REVS, revoked=["ab" * 65]), _with(REVS, unrevoked=None),
    {k: v for k, v in REVS.items() if k != "unrevoked"},
    _with(REVS, full=True, revoked=["00"] * 10 + [None]),  # bad last: nothing applied
]


@pytest.mark.parametrize("doc", HOSTILE_REVS, ids=range(len(HOSTILE_REVS)))
def test_hostile_revocations_reply_keeps_the_set(tmp_path: Path, doc: Any) -> None:
    with BadServer() as server:
        sync = worker(server, tmp_path)
        serve(server, REVS)
        sync.sync_revocations()
        before = snapshot(sync)
        serve(server, doc)
        with pytest.raises(ServerUnavailable):
            sync.sync_revocations()
        assert snapshot(sync) == before


def test_unreachable_server_keeps_everything_and_worker_reports(tmp_path: Path) -> None:
    with BadServer() as server:
        sync = worker(server, tmp_path)
        serve(server, KEYS, ETag='"k1"')
        sync.sync_keys()
        before = snapshot(sync)
        server.mode = "500"
        assert sync.run_once() == 60 and sync.reachable is False
        assert snapshot(sync) == before
