"""Uploads count only what the server acknowledged, a refused event is bisected out into the
dead-letter table (issue 8, item 4), and payload bytes reach /v1/verify without loss, so
online and offline decide every code the same way (item 5)."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from pathlib import Path

import pytest

from gate.central.client import ServerClient, ServerUnavailable, UploadReceipt
from gate.central.sync import CredentialSync, EventUploader
from gate.config import Config, PolicySection, ServerSection
from gate.journal import Journal
from gate.verify import build_chain
from gate.verify.credentials import CredentialStore
from gate.verify.online import ServerCheck
from gate_server.core.config import RateLimit
from tests.support.badserver import BadServer, free_port_url
from tests.support.server import Running, enrol, serving, sqlite_server, stored_events

TOKEN = "test-token-0123456789"
TIMEOUT_S = 0.3
STATUS = {"green": "grant", "yellow": "staff", "red": "deny", "black": "deny"}


def client_for(url: str, token: str = TOKEN) -> ServerClient:
    return ServerClient(ServerSection(url=url, timeout_s=TIMEOUT_S), "gate-1", token)


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    j = Journal(tmp_path / "journal.db", "gate-1")
    for i in range(3):
        j.record("system", event="test", n=i)
    return j


def ids(journal: Journal) -> list[str]:
    return [e["id"] for e in journal.events()]


def pending_ids(journal: Journal) -> list[str]:
    return [e["id"] for _, e in journal.pending(100)]


def upload_against(journal: Journal, status: int, ctype: str, reply: object | bytes,
                   **headers: str) -> EventUploader:
    raw = reply if isinstance(reply, bytes) else json.dumps(reply).encode()
    server = BadServer("custom")
    server.reply, server.reply_headers = (status, ctype, raw), headers
    with server:
        up = EventUploader(client_for(server.url), journal, 1, 10, 60)
        try:
            up.upload_once()
        except ServerUnavailable:
            pass
    return up


@pytest.mark.parametrize("status,ctype,reply", [
    (200, "text/html", b"<html>Sign in to continue</html>"),
    (200, "text/plain", b'{"stored": 3}'),
    (200, "application/json", b"not json"),
    (200, "application/json", {"stored": 0}),
    (200, "application/json", {"stored": 2}),           # partial count, no ids: retry all
    (200, "application/json", {"stored": "3"}),
    (200, "application/json", {"stored": True}),
    (200, "application/json", {"accepted": "all"}),
    (200, "application/json", {"accepted": ["someone-else"]}),
    (200, "application/json", []),
    (302, "text/html", b""),
    (500, "application/json", {"stored": 3}),
], ids=["html", "text-plain", "not-json", "stored-0", "stored-partial", "stored-string",
        "stored-bool", "accepted-string", "accepted-foreign", "list", "redirect", "500"])
def test_an_upload_reply_that_acknowledges_nothing_marks_nothing(journal, status, ctype,
                                                                 reply) -> None:
    up = upload_against(journal, status, ctype, reply, Location="http://127.0.0.1:1/")
    assert pending_ids(journal) == ids(journal)
    assert journal.dead_letter_count() == 0
    assert up.run_once() >= 1  # and the worker backs off rather than spinning


@pytest.mark.parametrize("reply", [{}, {"stored": 3}, {"whatever": 1}],
                         ids=["v1-empty-object", "stored-all", "unknown-fields"])
def test_a_whole_batch_acknowledgement_marks_the_batch(journal, reply) -> None:
    upload_against(journal, 200, "application/json", reply)
    assert pending_ids(journal) == []


def test_accepted_and_rejected_ids_are_honoured_exactly(journal) -> None:
    first, second, third = ids(journal)
    upload_against(journal, 200, "application/json",
                   {"stored": 1, "accepted": [first, "not-ours"], "rejected": [second]})
    assert pending_ids(journal) == [third]            # in neither list: stays pending
    dead = journal.dead_letters()
    assert [(d["event"]["id"], d["reason"]) for d in dead] == [(second, "rejected")]


def test_receipt_settle_rules() -> None:
    batch = ["a", "b", "c"]
    assert UploadReceipt(None, None, frozenset()).settle(batch) == (batch, [])
    assert UploadReceipt(3, None, frozenset()).settle(batch) == (batch, [])
    assert UploadReceipt(2, None, frozenset()).settle(batch) == ([], [])
    assert UploadReceipt(3, None, frozenset({"b"})).settle(batch) == ([], ["b"])
    assert UploadReceipt(0, frozenset(), frozenset()).settle(batch) == ([], [])
    assert UploadReceipt(9, frozenset({"c", "a"}), frozenset({"c"})).settle(batch) == (
        ["a"], ["c"])


def test_a_400_batch_is_bisected_down_to_the_refused_event(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.db", "gate-1")
    for i in range(8):
        journal.record("system", event="test", n=i)
    all_ids = ids(journal)
    poisoned = all_ids[5]
    with BadServer("events") as server:
        server.poison = {poisoned}
        up = EventUploader(client_for(server.url), journal, 1, 8, 60)
        assert up.upload_once() == 8
    assert pending_ids(journal) == []
    assert sorted(server.accepted) == sorted(set(all_ids) - {poisoned})
    assert [d["event"]["id"] for d in journal.dead_letters()] == [poisoned]
    assert len(server.batches) <= 1 + 2 * 3  # the batch, then two halves per level of 8
    # Kept for good: neither later uploads nor pruning (even of un-uploaded events) lose it.
    journal.prune("9999-01-01T00:00:00Z", uploaded_only=False)
    assert [d["event"]["id"] for d in journal.dead_letters()] == [poisoned]
    assert journal.dead_letter_count() == 1


def test_the_gate_server_receipt_marks_a_resent_batch(central: Running, journal) -> None:
    """A batch the server already holds (a lost reply) is acknowledged by id and marked,
    where a count of new events (0) would have re-sent it for ever."""
    client = client_for(central.url, central.server.tokens["gate-1"])
    batch = [e for _, e in journal.pending(10)]
    client.upload(batch)                             # stored, but the gate never hears
    assert EventUploader(client, journal, 1, 10, 60).upload_once() == 3
    assert pending_ids(journal) == []
    assert journal.dead_letter_count() == 0
    assert sorted(e["id"] for e in stored_events(central.server)) == sorted(ids(journal))


# -- payload bytes ------------------------------------------------------------------------------

def test_verify_sends_code_b64_always_and_code_only_for_utf8() -> None:
    with BadServer("ok") as server:
        client = client_for(server.url)
        client.verify("Zoë-1".encode(), "2026-01-01T00:00:00Z", TIMEOUT_S)
        client.verify(b"\xff\x00GATE", "2026-01-01T00:00:00Z", TIMEOUT_S)
    text, binary = server.bodies
    assert text["code"] == "Zoë-1" and base64.b64decode(text["code_b64"]) == "Zoë-1".encode()
    assert "code" not in binary and base64.b64decode(binary["code_b64"]) == b"\xff\x00GATE"


def test_distinct_binary_payloads_are_decided_distinctly_online_and_offline(
        gs_sqlite_template: Path, tmp_path: Path) -> None:
    """128 payloads that read the same with replacement characters (once all granted online
    as one enrolled code): only the enrolled bytes open, online and from the synced cache."""
    payloads = [bytes([0x80 + i]) + b"GATE" for i in range(128)]
    assert len({p.decode("utf-8", "replace") for p in payloads}) == 1
    enrolled = payloads[17]
    store = CredentialStore(tmp_path / "cred.db")
    # 128 verifications at once: above gate-server's default per-gate rate limit
    srv = sqlite_server(gs_sqlite_template, tmp_path, RateLimit(burst=1000, per_s=1000))
    enrol(srv, enrolled, "Binary")
    token = srv.tokens["gate-1"]
    with serving(srv) as running:
        CredentialSync(client_for(running.url, token), store, 60).sync_once()
        online_grants = decide_all(store, running.url, payloads, token)
    offline_grants = decide_all(store, free_port_url(), payloads)
    assert online_grants == [(enrolled, "server")]
    assert offline_grants == [(enrolled, "cache")]


def test_a_v1_server_never_sees_a_lossy_code() -> None:
    """A server that knows only `code` gets none for a binary payload: the gate cannot be
    granted by a replacement-character string."""
    with BadServer("ok") as server:
        client_for(server.url).verify(b"\x80GATE", "2026-01-01T00:00:00Z", TIMEOUT_S)
    (sent,) = server.bodies
    assert "\ufffd" not in json.dumps(sent, ensure_ascii=False) and "code" not in sent


def decide_all(store: CredentialStore, url: str, payloads: list[bytes], token: str = TOKEN
               ) -> list[tuple[bytes, str]]:
    cfg = Config(server=ServerSection(url=url, timeout_s=TIMEOUT_S),
                 policy=PolicySection(offline="cache"))
    online = ServerCheck(client_for(url, token), TIMEOUT_S, STATUS)
    chain = build_chain(cfg, store, online)
    try:
        out = []
        for p in payloads:
            d = chain.check(hashlib.sha256(p).hexdigest(), p, time.time())
            if d.granted:
                out.append((p, d.source))
        return out
    finally:
        online.close()


def test_gate_status_shows_the_dead_letter_count() -> None:
    from gate.status import format_status
    base = {"gate": "g", "state": "running", "door": {}}
    assert "2 event(s) refused by the server, set aside" in format_status(
        {**base, "dead_letters": 2})
    assert "refused by the server" not in format_status({**base, "dead_letters": None})
