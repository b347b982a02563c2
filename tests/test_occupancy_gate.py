"""The gate's occupancy step (gate/verify/occupancy.py) on a real SQLite store and an
injected monotonic clock, and the strict parsing of the verify and lease replies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gate.central.client import ServerUnavailable, SitePolicy, parse_leases, parse_verify
from gate.central.leases import OccupancyStore
from gate.occupancy import Lease, ServerOccupancy
from gate.verify.decision import Decision
from gate.verify.occupancy import OccupancyGuard

CACHE_GRANT = Decision(verdict="grant", reason="ok", source="cache", credential_id="p1")


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def guard(tmp_path: Path, clock: Clock, *, contact: bool = False, direction: str = "in",
          alarms: list[str] | None = None) -> OccupancyGuard:
    sink = alarms if alarms is not None else []
    return OccupancyGuard(OccupancyStore(tmp_path / "occ.db"), direction, has_contact=contact,
                          open_s=1.0, max_open_s=10.0, grace_s=2.0, max_keys=100,
                          on_alarm=lambda a, by: sink.append(a), monotonic=clock)


def policy(mode: str = "hard", limit: int | None = 2, passback: str = "off",
           window: float = 0.0) -> SitePolicy:
    lease = None if limit is None else Lease(seq=1, limit=limit, ttl_s=60.0, mode=mode)
    return SitePolicy("hq", "in", mode, passback, window, 10, 0, lease)


def test_offline_entries_spend_the_lease_then_deny_and_survive_a_restart(tmp_path: Path
                                                                          ) -> None:
    clock = Clock()
    g = guard(tmp_path, clock)
    assert g.step(CACHE_GRANT, "a").reason == "occupancy_full"   # never told: admits nobody
    g.accept(policy(limit=2))
    assert [g.step(CACHE_GRANT, k).verdict for k in "abc"] == ["grant", "grant", "deny"]
    assert g.full and g.snapshot()["lease"]["remaining"] == 0
    again = guard(tmp_path, clock)          # restarted: counters and policy from disk
    assert again.report()["spent"] == 2 and again.report()["epoch"] == g.report()["epoch"]
    assert again.step(CACHE_GRANT, "d").reason == "occupancy_full"  # no lease after restart


def test_soft_site_grants_past_the_lease_with_an_alarm_and_counts_it(tmp_path: Path) -> None:
    alarms: list[str] = []
    g = guard(tmp_path, Clock(), alarms=alarms)
    g.accept(policy(mode="soft", limit=0))
    assert g.step(CACHE_GRANT, "a").granted and alarms == ["occupancy_full"]
    assert g.report()["spent"] == 1          # the server hears of the person (overspent)


def test_with_a_contact_only_an_opening_commits_and_a_timeout_releases(tmp_path: Path) -> None:
    clock = Clock()
    g = guard(tmp_path, clock, contact=True)
    g.accept(policy(limit=5))
    g.step(CACHE_GRANT, "a")
    clock.t += 3.1                            # open_s 1 + grace 2 passed: nobody came in
    g.poll()
    g.step(CACHE_GRANT, "b")
    g.observe({"kind": "door", "state": "open"})
    assert (g.report()["spent"], g.report()["unused"]) == (2, 1)


def test_timed_anti_passback_offline(tmp_path: Path) -> None:
    clock = Clock()
    g = guard(tmp_path, clock)
    g.accept(policy(limit=5, passback="hard", window=30.0))
    assert g.step(CACHE_GRANT, "p1").granted
    assert g.step(CACHE_GRANT, "p1").reason == "anti_passback"
    clock.t += 30.0                           # within the 60 s lease, past the window
    assert g.step(CACHE_GRANT, "p1").granted


def test_server_grants_report_passages_and_lease_spend_reserves(tmp_path: Path) -> None:
    store_path = tmp_path / "occ.db"
    g = guard(tmp_path, Clock())
    g.accept(policy(limit=1))
    occ = ServerOccupancy("pa", "in", None, True)
    online = Decision(verdict="grant", reason="ok", source="server", occupancy=occ)
    assert g.step(online, "x").granted and g.report()["spent"] == 1
    assert g.step(online, "y").reason == "occupancy_full"   # the lease refuses the second
    out = Decision(verdict="grant", reason="ok", source="server",
                   occupancy=ServerOccupancy("pb", "out"))
    g.step(out, "z")
    assert OccupancyStore(store_path).pending_passages() == [
        {"id": "pa", "opened": True}, {"id": "pb", "opened": True}]


def test_an_offline_exit_is_counted_at_an_out_gate(tmp_path: Path) -> None:
    g = guard(tmp_path, Clock(), direction="out")
    assert g.step(CACHE_GRANT, "a").granted and g.report()["exits"] == 1


BASE = {"decision": "grant", "reason": "ok"}


@pytest.mark.parametrize("extra", [
    {"passage": "p"}, {"passage": {"id": "p"}}, {"passage": {"id": 1, "direction": "in"}},
    {"passage": {"id": "p", "direction": "sideways"}}, {"passage": {"id": "", "direction": "in"}},
    {"alarm": "fire"}, {"alarm": 1}, {"lease_spend": "true"}, {"lease_spend": False},
    {"lease_spend": 1},
])
def test_junk_occupancy_fields_are_server_unavailable(extra: dict[str, Any]) -> None:
    with pytest.raises(ServerUnavailable):
        parse_verify({**BASE, **extra})


def test_occupancy_fields_parse() -> None:
    a = parse_verify({**BASE, "passage": {"id": "p1", "direction": "out"},
                      "alarm": "anti_passback", "lease_spend": True})
    assert a.occupancy == ServerOccupancy("p1", "out", "anti_passback", True)
    assert parse_verify(BASE).occupancy is None


LEASES = {"site": "hq", "direction": "in", "occupancy": "hard", "anti_passback": "soft",
          "passback_window_s": 600, "capacity": 3, "inside": 1, "free": 1,
          "lease": {"seq": 1, "limit": 2, "places": 1, "ttl_s": 900, "mode": "hard",
                    "expires_at": "2030-01-01T00:00:00Z"}}


@pytest.mark.parametrize("change", [
    {"occupancy": "HARD"}, {"inside": -1}, {"inside": True}, {"capacity": "3"},
    {"passback_window_s": float("nan")}, {"lease": {"seq": 1}}, {"lease": []},
    {"direction": "up"},
])
def test_junk_lease_replies_are_server_unavailable(change: dict[str, Any]) -> None:
    with pytest.raises(ServerUnavailable):
        parse_leases({**LEASES, **change})


def test_lease_reply_parses() -> None:
    p = parse_leases(LEASES)
    assert p.lease is not None and (p.lease.limit, p.anti_passback, p.capacity) == (2, "soft", 3)
    assert parse_leases({**LEASES, "lease": None, "capacity": None}).lease is None


def test_status_shows_the_lease_and_local_count(tmp_path: Path) -> None:
    from gate.status import _occupancy

    g = guard(tmp_path, Clock())
    g.accept(policy(limit=2))
    g.step(CACHE_GRANT, "a")
    line = _occupancy(g.snapshot())
    assert "lease #1 1 of 2 left" in line and "admitted offline 1" in line
    assert "no lease" in _occupancy({"lease": None})
