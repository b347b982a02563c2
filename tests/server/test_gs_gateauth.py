"""The fast gate path (api/gateauth): one statement for an up-to-date sync, no token cache
(a rotated token fails at once), and a dead pooled connection retried, not a 500."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event, text, update

from gate_server.core import security
from gate_server.db.models import Gate
from tests.support.server import Server


def _sync(client: Any, server: Server, etag: str | None = None) -> Any:
    headers = {**server.auth(), "User-Agent": "gate/1.0"}
    if etag:
        headers["If-None-Match"] = etag
    return client.get("/v1/credentials", headers=headers)


def test_gs_gateauth_up_to_date_sync_is_one_select(server: Server, client: Any) -> None:
    server.issue("Ann")
    etag = _sync(client, server).headers["etag"]  # first call also writes last-seen
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, sql: str, *args: Any) -> None:
        statements.append(sql.split()[0].upper())

    event.listen(server.app.state.engine, "before_cursor_execute", seen)
    try:
        server.clock.advance(10)  # last-seen not due again
        assert _sync(client, server, etag).status_code == 304
    finally:
        event.remove(server.app.state.engine, "before_cursor_execute", seen)
    # The gate, its site's revision and the token check in one statement; no pass is read.
    assert statements == ["SELECT"]


def test_gs_gateauth_rotated_token_refused_on_next_request(server: Server,
                                                           client: Any) -> None:
    assert _sync(client, server).status_code == 200
    with server.session() as s:  # what rotating the token in the admin pages does
        s.execute(update(Gate).where(Gate.id == "gate-1")
                  .values(token_sha256=security.token_hash(security.new_gate_token())))
    assert _sync(client, server).status_code == 401  # no cache: not even one more request
    body: dict[str, Any] = {"gate": "gate-1", "events": [
        {"id": "e1", "at": "2026-03-01T12:00:00Z", "kind": "decision"}]}
    assert client.post("/v1/events", json=body, headers=server.auth()).status_code == 401


def test_gs_gateauth_dead_connection_is_retried_not_500(server: Server, client: Any,
                                                        db_url: str) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("server-side connection kill is PostgreSQL's")
    etag = _sync(client, server).headers["etag"]
    body: dict[str, Any] = {"gate": "gate-1", "events": [
        {"id": "e1", "at": "2026-03-01T12:00:00Z", "kind": "decision"}]}
    assert client.post("/v1/events", json=body, headers=server.auth()).status_code == 200
    # As a database restart would: every pooled connection of the app dies.
    from sqlalchemy import create_engine
    killer = create_engine(db_url)
    with killer.connect() as conn:
        n = conn.execute(text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                              "WHERE datname = current_database() "
                              "AND pid <> pg_backend_pid()")).scalar()
    killer.dispose()
    assert n and n >= 1
    assert _sync(client, server, etag).status_code == 304
    with killer.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
    killer.dispose()
    body["events"][0]["id"] = "e2"
    r = client.post("/v1/events", json=body, headers=server.auth())
    assert r.status_code == 200 and r.json()["accepted"] == ["e2"]


def test_gs_gateauth_database_work_is_bounded_to_db_threads() -> None:
    """At most DB_THREADS gate requests hold a database connection at once (the pool is
    sized for it); the others wait on the event loop."""
    import asyncio
    import threading
    from types import SimpleNamespace

    from gate_server.api.gateauth import DB_THREADS, in_db_thread

    lock, release = threading.Lock(), threading.Event()
    active = [0, 0]  # now, peak

    def work() -> None:
        with lock:
            active[0] += 1
            active[1] = max(active[1], active[0])
        assert release.wait(10)
        with lock:
            active[0] -= 1

    async def main() -> None:
        state = SimpleNamespace()
        tasks = [asyncio.ensure_future(in_db_thread(state, work)) for _ in range(3 * DB_THREADS)]
        for _ in range(1000):  # until the limiter is full
            await asyncio.sleep(0.001)
            if active[0] >= DB_THREADS:
                break
        for _ in range(20):    # give any extra thread the chance to start
            await asyncio.sleep(0.001)
        seen = active[1]
        release.set()
        await asyncio.gather(*tasks)
        assert seen == DB_THREADS

    asyncio.run(main())
