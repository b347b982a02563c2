"""Server metrics scraped over HTTP from a real uvicorn and parsed with prometheus_client's
parser, on SQLite and PostgreSQL: routes and statuses, latency, verify reasons, rate-limit
hits, new events, gates online, and the bearer token that guards /metrics."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine

from gate_server.core.config import RateLimit, SettingsError
from gate_server.core.metrics import build_metrics
from gate_server.db.session import make_sessionmaker
from gate_server.main import create_app
from tests.support.server import T0, Running, Server, make_server

TOKEN = "scrape-token-0123456789abcdef"
AT = "2026-03-01T12:00:00Z"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def server(db_url: str, tmp_path: Path) -> Iterator[Server]:
    """Overrides conftest's: a token file, a burst of 3 verifies, two gates on site "hq"."""
    token_file = tmp_path / "metrics-token"
    token_file.write_text(TOKEN + "\n")
    srv = make_server(db_url, tmp_path, rate=RateLimit(burst=3, per_s=0.001))
    srv.app.state.engine.dispose()
    srv.settings = dataclasses.replace(srv.settings, metrics_token_file=token_file,
                                       online_s=120.0)
    srv.app = create_app(srv.settings)
    srv.site("hq")
    srv.gate("gate-1", "hq")
    srv.gate("gate-2", "hq")
    yield srv
    srv.app.state.engine.dispose()


def scrape(live: Running, token: str = TOKEN) -> Samples:
    r = requests.get(f"{live.url}/metrics", headers={"Authorization": f"Bearer {token}"},
                     timeout=5)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    return {(s.name, frozenset(s.labels.items())): s.value
            for fam in text_string_to_metric_families(r.text) for s in fam.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_gs_metrics_count_requests_by_route_template_status_and_latency(live: Running) -> None:
    url, auth = live.url, live.server.auth()
    assert requests.get(f"{url}/v1/credentials", headers=auth, timeout=5).status_code == 200
    tag = requests.get(f"{url}/v1/credentials", headers=auth, timeout=5).headers["ETag"]
    r = requests.get(f"{url}/v1/credentials", headers={**auth, "If-None-Match": tag}, timeout=5)
    assert r.status_code == 304
    assert requests.get(f"{url}/v1/credentials", timeout=5).status_code == 401
    assert requests.get(f"{url}/pass/hostile-path-abc", timeout=5).status_code == 404
    # h11 hands an unknown method to the app (404/405, counted as route "unmatched"); uvicorn
    # with httptools refuses it in its HTTP parser (400) before any app code runs.
    brew = requests.request("BREW", f"{url}/zz-junk", timeout=5).status_code
    assert brew in (400, 404, 405)
    m = scrape(live)
    req = "gate_server_requests_total"
    assert value(m, req, route="/v1/credentials", method="GET", status="200") == 2
    assert value(m, req, route="/v1/credentials", method="GET", status="304") == 1
    assert value(m, req, route="/v1/credentials", method="GET", status="401") == 1
    # A hostile path or method never becomes a label value: the label sets stay bounded.
    labels = {v for (_, ls) in m for (_, v) in ls}
    assert not any("hostile" in v or "junk" in v or v == "BREW" for v in labels)
    assert value(m, req, route="unmatched", method="other", status="404") \
        + value(m, req, route="unmatched", method="other", status="405") == (brew != 400)
    count = value(m, "gate_server_request_duration_seconds_count", route="/v1/credentials")
    assert count == 4
    assert value(m, "gate_server_request_duration_seconds_bucket", route="/v1/credentials",
                 le="+Inf") == 4
    assert value(m, "gate_server_request_duration_seconds_sum", route="/v1/credentials") > 0


def test_gs_metrics_count_verify_decisions_by_reason_and_rate_limit_hits(live: Running) -> None:
    srv = live.server
    pid, code = srv.issue("Ann")
    srv.revoke(pid)
    _, good = srv.issue("Bo")

    def verify(c: str) -> int:
        return requests.post(f"{live.url}/v1/verify", headers=srv.auth(), timeout=5,
                             json={"gate": "gate-1", "code": c, "scanned_at": AT}).status_code

    assert [verify(good), verify("NOT-A-PASS"), verify(code), verify(good)] == [200, 200, 200, 429]
    m = scrape(live)
    dec = "gate_server_verify_decisions_total"
    assert value(m, dec, decision="grant", reason="ok") == 1
    assert value(m, dec, decision="deny", reason="unknown") == 1
    assert value(m, dec, decision="deny", reason="revoked") == 1
    assert value(m, "gate_server_rate_limited_total") == 1
    assert value(m, "gate_server_requests_total", route="/v1/verify", method="POST",
                 status="429") == 1


def test_gs_metrics_count_new_events_not_resent_duplicates(live: Running) -> None:
    events = [{"id": f"gate-1-{i}", "at": AT, "gate": "gate-1", "kind": "system",
               "event": "started"} for i in range(2)]

    def upload(batch: list[dict[str, Any]]) -> Any:
        return requests.post(f"{live.url}/v1/events", headers=live.server.auth(), timeout=5,
                             json={"gate": "gate-1", "events": batch}).json()

    assert upload(events)["stored"] == 2
    assert upload(events + [{**events[0], "id": "gate-1-9"}])["stored"] == 3  # 2 resent
    assert value(scrape(live), "gate_server_events_stored_total") == 3


def test_gs_metrics_gates_online_follow_the_window_on_the_server_clock(live: Running) -> None:
    srv = live.server
    m = scrape(live)
    assert (value(m, "gate_server_gates"), value(m, "gate_server_gates_online")) == (2, 0)
    requests.get(f"{live.url}/v1/credentials", headers=srv.auth("gate-1"), timeout=5)
    srv.clock.advance(100)
    m = scrape(live)
    assert value(m, "gate_server_gates_online") == 1
    assert value(m, "gate_server_database_up") == 1
    srv.clock.advance(21)  # 121 s since gate-1 was seen; the window is 120 s
    assert value(scrape(live), "gate_server_gates_online") == 0


def test_gs_metrics_need_the_bearer_token(live: Running) -> None:
    url = f"{live.url}/metrics"
    assert requests.get(url, timeout=5).status_code == 401
    r = requests.get(url, headers={"Authorization": f"Bearer {TOKEN}x"}, timeout=5)
    assert r.status_code == 401 and "gate_server" not in r.text
    r = requests.get(url, headers=live.server.auth(), timeout=5)  # a gate's token is not it
    assert r.status_code == 401
    r = requests.get(url, headers={"Authorization": f"Basic {TOKEN}"}, timeout=5)
    assert r.status_code == 401


def test_gs_metrics_are_off_without_a_token_file(db_url: str, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient
    srv = make_server(db_url, tmp_path)
    try:
        with TestClient(srv.app) as client:
            assert client.get("/metrics").status_code == 404
    finally:
        srv.app.state.engine.dispose()


@pytest.mark.parametrize("content", [None, "short\n", "has a space in it 0123456789\n"])
def test_gs_metrics_refuse_a_bad_token_file_naming_it(db_url: str, tmp_path: Path,
                                                      content: str | None) -> None:
    srv = make_server(db_url, tmp_path)
    srv.app.state.engine.dispose()
    token_file = tmp_path / "tok"
    if content is not None:
        token_file.write_text(content)
    with pytest.raises(SettingsError, match="--metrics-token-file"):
        create_app(dataclasses.replace(srv.settings, metrics_token_file=token_file))


def test_gs_metrics_report_database_down_instead_of_failing(tmp_path: Path) -> None:
    from prometheus_client import generate_latest
    engine = create_engine(f"sqlite:///{tmp_path / 'no-such-dir' / 'x.db'}")
    metrics = build_metrics(make_sessionmaker(engine), lambda: T0, 60.0)
    fams = {f.name: f for f in text_string_to_metric_families(generate_latest(
        metrics.registry).decode())}
    assert fams["gate_server_database_up"].samples[0].value == 0
    assert "gate_server_gates_online" not in fams


def test_gs_metrics_serve_exits_2_on_a_bad_token_file(db_url: str, tmp_path: Path,
                                                     capsys: Any) -> None:
    from gate_server.cli import main
    secret = tmp_path / "secret"
    assert main(["--db", db_url, "--secret-file", str(secret), "init"]) == 0
    rc = main(["--db", db_url, "--secret-file", str(secret), "serve", "--listen",
               "127.0.0.1:1", "--metrics-token-file", str(tmp_path / "missing")])
    assert rc == 2 and "--metrics-token-file" in capsys.readouterr().err


def test_gs_gate_last_seen_is_written_at_most_every_seen_write_s(server: Server) -> None:
    from fastapi.testclient import TestClient

    from gate_server.db.models import Gate

    def seen() -> Any:
        with server.session() as s:
            gate = s.get(Gate, "gate-1")
            assert gate is not None
            return gate.last_seen_at.replace(tzinfo=None), gate.software_version

    with TestClient(server.app) as client:
        def call(agent: str = "gate/1.0") -> None:
            r = client.get("/v1/credentials", headers={**server.auth(), "User-Agent": agent})
            assert r.status_code == 200

        call()
        first = seen()
        server.clock.advance(59)
        call()
        assert seen() == first  # within 60 s: no write
        call("gate/1.1")        # a new version is written at once
        assert seen() == ((T0.replace(tzinfo=None) + (server.clock.now - T0)), "1.1")
        server.clock.advance(60)
        call("gate/1.1")
        assert seen()[0] == server.clock.now.replace(tzinfo=None)
