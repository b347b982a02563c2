"""Occupancy over API v1 with three simulated gates (two in, one out) on SQLite and
PostgreSQL: capacity, exits, anti-passback, holds, leases through a server outage with the
gates' real ledgers (gate/occupancy.py), and hostile reports."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from gate.occupancy import Lease as GateLease
from gate.occupancy import LeaseLedger
from gate_server.db.models import Event, Site
from gate_server.services import admin, occupancy
from tests.server.test_gs_web import csrf_of, signed_in
from tests.support.server import Server, make_server

GATES = {"in-1": "in", "in-2": "in", "out-1": "out"}


class Site3:
    """A site with gates in-1, in-2 (in) and out-1 (out), and helpers speaking API v1."""

    def __init__(self, srv: Server, client: TestClient) -> None:
        self.srv, self.client = srv, client

    def verify(self, gate: str, code: str) -> dict[str, Any]:
        r = self.client.post("/v1/verify", headers=self.srv.auth(gate), json={
            "gate": gate, "code": code, "scanned_at": "2026-03-01T12:00:00Z"})
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    def door(self, gate: str, reply: dict[str, Any], opened: bool = True) -> None:
        r = self.client.post("/v1/passages", headers=self.srv.auth(gate), json={
            "gate": gate, "passages": [{"id": reply["passage"]["id"], "opened": opened}]})
        assert r.status_code == 200 and r.json()["accepted"] == [reply["passage"]["id"]]

    def enter(self, gate: str, code: str) -> dict[str, Any]:
        reply = self.verify(gate, code)
        if reply["decision"] == "grant":
            self.door(gate, reply)
        return reply

    def lease(self, gate: str, ledger: LeaseLedger, now: float) -> dict[str, Any]:
        r = self.client.post("/v1/leases", headers=self.srv.auth(gate),
                             json={"gate": gate, **ledger.report(now)})
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        if body["lease"] is not None:
            ledger.accept(GateLease.from_json(body["lease"]), now)
        return body

    def count(self) -> dict[str, Any]:
        body: dict[str, Any] = self.client.get(
            "/v1/occupancy", headers=self.srv.auth("in-1")).json()
        return body


def build(db_url: str, tmp_path: Path, **site: Any) -> tuple[Server, Iterator[Site3]]:
    srv = make_server(db_url, tmp_path)
    with srv.session() as s:
        admin.add_site(s, admin.SiteSpec("hq", **site), srv.clock())
        for gid, direction in GATES.items():
            _, srv.tokens[gid] = admin.add_gate(s, gid, "hq", direction, srv.clock())

    def run() -> Iterator[Site3]:
        with TestClient(srv.app) as client:
            yield Site3(srv, client)
        srv.app.state.engine.dispose()
    return srv, run()


@pytest.fixture
def hard(db_url: str, tmp_path: Path) -> Iterator[Site3]:
    _, it = build(db_url, tmp_path, capacity=2, occupancy="hard", anti_passback="hard")
    yield from it


def test_occupancy_full_denies_and_an_exit_lets_the_next_in(hard: Site3) -> None:
    a, b, c = (hard.srv.issue(h)[1] for h in ("Ann", "Bob", "Cat"))
    assert hard.enter("in-1", a)["passage"]["direction"] == "in"
    assert hard.enter("in-2", b)["decision"] == "grant"
    full = hard.verify("in-1", c)
    assert (full["decision"], full["reason"]) == ("deny", "occupancy_full")
    assert "passage" not in full and "open_s" not in full
    assert hard.count()["inside"] == 2
    out = hard.enter("out-1", a)  # presenting a pass at the out gate is its exit
    assert out["decision"] == "grant" and out["passage"]["direction"] == "out"
    assert hard.count()["inside"] == 1
    assert hard.enter("in-2", c)["decision"] == "grant"
    assert hard.count()["free"] == 0


def test_anti_passback_hard_until_the_pass_exits(hard: Site3) -> None:
    a = hard.srv.issue("Ann")[1]
    hard.enter("in-1", a)
    again = hard.verify("in-2", a)  # handed back over the turnstile
    assert (again["decision"], again["reason"]) == ("deny", "anti_passback")
    hard.enter("out-1", a)
    assert hard.enter("in-2", a)["decision"] == "grant"


def test_a_held_grant_takes_its_place_until_the_door_report(hard: Site3) -> None:
    a, b, c = (hard.srv.issue(h)[1] for h in ("Ann", "Bob", "Cat"))
    hard.enter("in-1", a)
    pending = hard.verify("in-2", b)  # granted, door not reported yet
    assert hard.verify("in-1", c)["reason"] == "occupancy_full"
    hard.door("in-2", pending, opened=False)  # Bob turned away: place and presence back
    assert hard.count()["inside"] == 1
    assert hard.enter("in-2", b)["decision"] == "grant"  # not anti-passback: never entered
    # A hold never reported counts as an entry after hold_s (the safe side).
    hard.enter("out-1", b)
    hard.verify("in-1", c)
    hard.srv.clock.advance(hard.srv.settings.occupancy.hold_s + 1)
    assert hard.count()["inside"] == 2 and hard.count()["holds"] == 0


def test_soft_modes_grant_with_alarm_events(db_url: str, tmp_path: Path) -> None:
    _, it = build(db_url, tmp_path, capacity=1, occupancy="soft", anti_passback="soft")
    site = next(it)
    a, b = site.srv.issue("Ann")[1], site.srv.issue("Bob")[1]
    site.enter("in-1", a)
    over = site.enter("in-2", b)
    assert over["decision"] == "grant" and over["alarm"] == "occupancy_full"
    twice = site.enter("in-1", a)
    assert twice["decision"] == "grant" and twice["alarm"] == "anti_passback"
    with site.srv.session() as s:
        alarms = sorted(e.body for e in s.query(Event).filter(Event.kind == "alarm"))
    assert len(alarms) == 2 and any('"occupancy_full"' in x for x in alarms)
    assert site.count()["inside"] == 3
    next(it, None)


def test_timed_anti_passback_window(db_url: str, tmp_path: Path) -> None:
    _, it = build(db_url, tmp_path, anti_passback="hard", passback_minutes=10)
    site = next(it)
    a = site.srv.issue("Ann")[1]
    site.enter("in-1", a)
    site.enter("out-1", a)
    assert site.verify("in-2", a)["reason"] == "anti_passback"  # out, but within 10 min
    site.srv.clock.advance(601)
    assert site.enter("in-2", a)["decision"] == "grant"
    next(it, None)


def test_leases_bound_offline_admissions_and_counts_converge(db_url: str,
                                                              tmp_path: Path) -> None:
    _, it = build(db_url, tmp_path, capacity=10, occupancy="hard")
    site = next(it)
    people = [site.srv.issue(f"P{i}")[1] for i in range(12)]
    for code in people[:3]:
        site.enter("in-1", code)  # 3 inside, online
    mono = 0.0
    ledgers = {g: LeaseLedger() for g in GATES}
    replies = {g: site.lease(g, ledgers[g], mono) for g in GATES}
    assert replies["out-1"]["lease"] is None  # an out gate reports exits, takes no lease
    leased = sum(ledgers[g].remaining(mono) for g in ("in-1", "in-2"))
    assert 0 < leased <= 7 and site.count()["leased"] == leased
    # The server is down: the gates decide alone; each admits exactly its lease, then denies.
    admitted = {}
    for g in ("in-1", "in-2"):
        n = 0
        while (adm := ledgers[g].reserve(mono)).allowed:
            assert adm.ticket is not None
            ledgers[g].commit(adm.ticket)
            n += 1
        assert adm.reason == "lease_spent"
        admitted[g] = n
    ledgers["out-1"].record_exit()  # one person leaves through the out gate, offline
    assert 3 + sum(admitted.values()) <= 10
    # Back: the reports settle the counts.
    mono += 10
    for g in GATES:
        site.lease(g, ledgers[g], mono)
    assert site.count()["inside"] == 3 + sum(admitted.values()) - 1
    # An expired lease spends nothing; a repeated report changes nothing.
    mono += site.srv.settings.occupancy.lease_ttl_s + 1
    assert ledgers["in-1"].reserve(mono).reason == "lease_expired"
    before = site.count()["inside"]
    site.lease("out-1", ledgers["out-1"], mono)
    site.lease("out-1", ledgers["out-1"], mono)
    assert site.count()["inside"] == before
    next(it, None)


def test_an_unreported_lease_stays_held_until_its_gate_reports(db_url: str,
                                                                tmp_path: Path) -> None:
    _, it = build(db_url, tmp_path, capacity=4, occupancy="hard")
    site = next(it)
    led = LeaseLedger()
    places = site.lease("in-1", led, 0.0)["lease"]["places"]
    assert places >= 1
    # Long after expiry + margin the server still holds it: the gate may have spent it.
    site.srv.clock.advance(24 * 3600)
    assert site.count()["leased"] == places
    adm = led.reserve(1.0)
    assert adm.ticket is not None
    led.release(adm.ticket)  # the door did not open
    site.lease("in-1", led, 2.0)
    assert site.count()["inside"] == 0
    next(it, None)


def test_a_lost_lease_reply_is_not_double_spent(db_url: str, tmp_path: Path) -> None:
    _, it = build(db_url, tmp_path, capacity=6, occupancy="hard")
    site = next(it)
    led = LeaseLedger()
    site.lease("in-1", led, 0.0)
    held = site.count()["leased"]
    # The gate asks again but the reply is lost: it keeps spending its first lease.
    lost = site.client.post("/v1/leases", headers=site.srv.auth("in-1"),
                            json={"gate": "in-1", **led.report(1.0)}).json()["lease"]
    assert led.last_seq < lost["seq"]
    assert site.count()["leased"] >= held  # both are held: max of the two limits
    assert site.count()["free"] + site.count()["leased"] == 6
    next(it, None)


def test_new_epoch_counts_old_leases_as_spent(db_url: str, tmp_path: Path) -> None:
    _, it = build(db_url, tmp_path, capacity=6, occupancy="hard")
    site = next(it)
    led = LeaseLedger()
    places = site.lease("in-1", led, 0.0)["lease"]["places"]
    site.lease("in-1", LeaseLedger(), 0.0)  # the gate lost its state (new epoch)
    assert site.count()["inside"] == places
    next(it, None)


@pytest.mark.parametrize("body,status,word", [
    ({"epoch": "e1", "spent": 1, "unused": 2, "exits": 0, "last_seq": 0, "active": False},
     400, "unused"),
    ({"epoch": "e1", "spent": -1, "unused": 0, "exits": 0, "last_seq": 0, "active": False},
     422, "spent"),
    ({"epoch": "e1", "spent": True, "unused": 0, "exits": 0, "last_seq": 0, "active": False},
     422, "spent"),
    ({"epoch": "e 1", "spent": 0, "unused": 0, "exits": 0, "last_seq": 0, "active": False},
     422, "epoch"),
    ({"epoch": "e1", "spent": 0, "unused": 0, "exits": 0, "last_seq": 0}, 422, "active"),
])
def test_hostile_lease_reports_are_refused(hard: Site3, body: dict[str, Any], status: int,
                                           word: str) -> None:
    r = hard.client.post("/v1/leases", headers=hard.srv.auth("in-1"),
                         json={"gate": "in-1", **body})
    assert r.status_code == status and word in r.json()["error"]
    assert hard.count()["inside"] == 0


def test_reports_for_another_gate_are_refused(hard: Site3) -> None:
    a = hard.srv.issue("Ann")[1]
    reply = hard.verify("in-1", a)
    r = hard.client.post("/v1/passages", headers=hard.srv.auth("in-2"), json={
        "gate": "in-2", "passages": [{"id": reply["passage"]["id"], "opened": True}]})
    assert r.json()["accepted"] == []  # another gate's passage is not in-2's to report
    r = hard.client.post("/v1/leases", headers=hard.srv.auth("in-2"), json={
        "gate": "in-1", "epoch": "e", "spent": 5, "unused": 0, "exits": 0, "last_seq": 0,
        "active": False})
    assert r.status_code == 403
    assert hard.count()["inside"] == 0


def test_capacity_as_percentage_of_headcount() -> None:
    site = Site(capacity=None, limit_pct=50.0, headcount=240)
    assert occupancy.capacity_of(site) == 120
    assert occupancy.capacity_of(Site(capacity=None, limit_pct=33.3, headcount=10)) == 3


def test_correction_and_daily_reset_are_journaled(hard: Site3) -> None:
    srv = hard.srv
    hard.enter("in-1", srv.issue("Ann")[1])
    with srv.session() as s:
        site = admin.site_by_name(s, "hq")
        occupancy.correct(s, site, 5, "guard-1", srv.clock(), "counted at noon")
        assert occupancy.run_due_resets(s, srv.clock()) == []  # 03:00 UTC is not due yet
    srv.clock.advance(timedelta(hours=15, minutes=1).total_seconds())  # 03:01 next day
    with srv.session() as s:
        assert occupancy.run_due_resets(s, srv.clock()) == ["hq"]
        assert occupancy.run_due_resets(s, srv.clock()) == []  # once per day
    assert hard.count()["inside"] == 0
    with srv.session() as s:
        bodies = [e.body for e in s.query(Event).filter(Event.kind == "occupancy")
                  .order_by(Event.n)]
    assert '"by":"guard-1"' in bodies[0] and '"after":5' in bodies[0]
    assert '"action":"reset"' in bodies[1] and '"by":"schedule"' in bodies[1]


def test_reset_time_is_site_local(db_url: str, tmp_path: Path) -> None:
    srv, it = build(db_url, tmp_path, timezone="Asia/Jakarta", reset_at="02:00")
    next(it)
    # T0 is 12:00 UTC = 19:00 in Jakarta; 02:00 Jakarta is 19:00 UTC.
    srv.clock.advance(6.5 * 3600)
    with srv.session() as s:
        assert occupancy.run_due_resets(s, srv.clock()) == []
    srv.clock.advance(3600)
    with srv.session() as s:
        assert occupancy.run_due_resets(s, srv.clock()) == ["hq"]
    next(it, None)


def _inside(srv: Server) -> int:
    with srv.session() as s:
        return occupancy.count(s, admin.site_by_name(s, "hq"), srv.clock()).inside


def _journaled(srv: Server) -> list[str]:
    with srv.session() as s:
        return [e.body for e in s.query(Event).filter(Event.kind == "occupancy")
                .order_by(Event.n)]


def test_admin_occupancy_needs_a_session(hard: Site3) -> None:
    anon = TestClient(hard.srv.app)
    for path in ("/admin/occupancy", "/admin/occupancy/rows"):
        r = anon.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/admin/login", path
    r = anon.post("/admin/occupancy/hq/correct", data={"count": "2", "csrf": "x"},
                  follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/admin/login"
    assert _inside(hard.srv) == 0 and _journaled(hard.srv) == []


def test_admin_occupancy_reception_watches_but_cannot_correct(hard: Site3) -> None:
    srv = hard.srv
    hard.enter("in-1", srv.issue("Ann")[1])
    desk = signed_in(srv, "reception", "desk")
    page = desk.get("/admin/occupancy")
    assert page.status_code == 200 and 'class="inside">1<' in page.text
    assert 'href="/admin/occupancy"' in page.text and 'data-refresh="/admin/occupancy/rows"' \
        in page.text and "/static/admin.js" in page.text
    assert "/correct" not in page.text  # no form offered to a role that may not use it
    rows = desk.get("/admin/occupancy/rows")
    assert rows.status_code == 200 and "<html" not in rows.text and 'data-site="hq"' in rows.text
    r = desk.post("/admin/occupancy/hq/correct",
                  data={"csrf": csrf_of(page.text), "count": "0"}, follow_redirects=False)
    assert r.status_code == 403 and "Only an admin" in r.text
    assert _inside(srv) == 1 and _journaled(srv) == []


def test_admin_occupancy_correction_without_or_with_a_wrong_csrf_is_refused(
        hard: Site3) -> None:
    c = signed_in(hard.srv, "admin", "alice")
    good = csrf_of(c.get("/admin/occupancy").text)
    for token in (None, "wrong", good[:-1]):
        body = {"count": "7", **({"csrf": token} if token is not None else {})}
        r = c.post("/admin/occupancy/hq/correct", data=body, follow_redirects=False)
        assert r.status_code == 403, token
    assert _inside(hard.srv) == 0 and _journaled(hard.srv) == []


def test_admin_occupancy_correction_is_journaled_with_the_admins_name(hard: Site3) -> None:
    srv = hard.srv
    hard.enter("in-1", srv.issue("Ann")[1])
    c = signed_in(srv, "admin", "alice")
    page = c.get("/admin/occupancy")
    assert 'action="/admin/occupancy/hq/correct"' in page.text
    csrf = csrf_of(page.text)
    r = c.post("/admin/occupancy/hq/correct",
               data={"csrf": csrf, "count": "2", "note": "counted at noon"},
               follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/admin/occupancy"
    assert hard.count()["inside"] == 2
    assert "full" in c.get("/admin/occupancy/rows").text  # capacity 2
    for bad in ("-3", "2.5", "x", "", "99999999999", "\u0663"):  # Arabic-Indic 3: not ASCII
        r = c.post("/admin/occupancy/hq/correct", data={"csrf": csrf, "count": bad})
        assert r.status_code == 400 and "whole number" in r.text, bad
    r = c.post("/admin/occupancy/hq/correct", data={"csrf": csrf, "count": "1",
                                                    "note": "n" * 201})
    assert r.status_code == 400 and "Note" in r.text
    r = c.post("/admin/occupancy/nowhere/correct", data={"csrf": csrf, "count": "1"})
    assert r.status_code == 404
    assert hard.count()["inside"] == 2
    bodies = _journaled(srv)
    assert len(bodies) == 1 and '"by":"alice"' in bodies[0] and '"after":2' in bodies[0]
    assert "counted at noon" in bodies[0]


def test_full_but_for_a_gates_own_lease_it_pays_online_from_its_ledger(
        db_url: str, tmp_path: Path) -> None:
    _, it = build(db_url, tmp_path, capacity=4, occupancy="hard")
    site = next(it)
    led = LeaseLedger()
    places = site.lease("in-1", led, 0.0)["lease"]["places"]
    codes = [site.srv.issue(f"P{i}")[1] for i in range(6)]
    for code in codes[:4 - places]:
        assert site.enter("in-2", code)["decision"] == "grant"
    assert site.verify("in-2", codes[4])["reason"] == "occupancy_full"  # no lease at in-2
    paid = site.verify("in-1", codes[4])
    assert paid["decision"] == "grant" and paid["lease_spend"] is True
    adm = led.reserve(1.0)
    assert adm.ticket is not None
    led.commit(adm.ticket)
    site.door("in-1", paid)           # counted once: by the ledger's report, not the passage
    site.lease("in-1", led, 2.0)
    assert site.count()["inside"] == 4 - places + 1
    next(it, None)
