"""The real gate client (gate.central.client, gate.central.sync, gate.verify.online) against gate-server
behind a real uvicorn on 127.0.0.1, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest

from gate.central.client import ServerClient, ServerUnavailable
from gate.central.sync import CredentialSync, EventUploader
from gate.config import ServerSection
from gate.journal import Journal
from gate.verify.credentials import SERVER, CredentialStore
from gate.verify.online import ServerCheck
from tests.support.server import Running

STATUS = {"green": "grant", "yellow": "staff", "red": "deny", "black": "deny"}


def client(live: Running, gate: str = "gate-1", token: str | None = None) -> ServerClient:
    return ServerClient(ServerSection(url=live.url, timeout_s=2.0), gate,
                        token or live.server.tokens[gate])


def sha(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def test_gs_gate_online_verifier_grants_and_denies(live: Running) -> None:
    pid, code = live.server.issue("Ann")
    v = ServerCheck(client(live), 2.0, STATUS)
    try:
        d = v.check(sha(code), code.encode(), time.time())
        assert (d.verdict, d.reason, d.source, d.label) == ("grant", "ok", "server", "Ann")
        d = v.check(sha("NOPE"), b"NOPE", time.time())
        assert (d.verdict, d.reason) == ("deny", "unknown")
        live.server.revoke(pid)
        assert v.check(sha(code), code.encode(), time.time()).reason == "revoked"
    finally:
        v.close()


def test_gs_gate_with_a_wrong_token_sees_server_unavailable(live: Running) -> None:
    c = client(live, token="not-the-token")
    with pytest.raises(ServerUnavailable) as info:
        c.verify(b"X", "2026-03-01T12:00:00Z", 2.0)
    assert info.value.reason == "http_401"
    c.close()


def test_gs_gate_sync_full_then_delta_then_not_modified(live: Running, tmp_path: Path) -> None:
    a, code_a = live.server.issue("A")
    live.server.issue("B")
    store = CredentialStore(tmp_path / "cred.db")
    sync = CredentialSync(client(live), store, 60)
    first = sync.sync_once()
    assert first.changed and first.full and store.count(SERVER) == 2
    assert sync.sync_once().changed is False  # 304 at once: the ETag is the site's revision
    live.server.revoke(a)
    c, code_c = live.server.issue("C")
    second = sync.sync_once()
    assert second.changed and not second.full and second.rows == 2
    assert store.lookup(sha(code_a), SERVER).revoked
    assert store.lookup(sha(code_c), SERVER).label == "C"
    assert sync.sync_once().changed is False


def test_gs_gate_upload_marks_events_sent_once_stored(live: Running, tmp_path: Path) -> None:
    from sqlalchemy import select

    from gate_server.db.models import Event
    journal = Journal(tmp_path / "journal.db", "gate-1")
    for i in range(5):
        journal.record("system", event="test", n=i)
    up = EventUploader(client(live), journal, 1, 2, 60)
    while up.upload_once():
        pass
    assert journal.pending(100) == []
    with live.server.session() as s:
        rows = s.scalars(select(Event).where(Event.gate_id == "gate-1")).all()
    assert len(rows) == 5
