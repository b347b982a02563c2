"""gate/occupancy.py: the lease ledger and the recent-entries memory, on injected monotonic
times; lease replies and saved states as hostile input."""

from __future__ import annotations

from typing import Any

import pytest

from gate.occupancy import Lease, LeaseError, LeaseLedger, RecentEntries


def lease(seq: int = 1, limit: int = 2, ttl: float = 60.0, mode: str = "hard") -> Lease:
    return Lease.from_json({"seq": seq, "limit": limit, "ttl_s": ttl, "mode": mode})


def test_ledger_admits_at_most_its_lease_then_denies() -> None:
    led = LeaseLedger()
    assert led.reserve(0.0).reason == "no_lease"
    led.accept(lease(limit=2), 0.0)
    tickets = [led.reserve(1.0).ticket for _ in range(2)]
    assert all(tickets) and led.reserve(1.0).reason == "lease_spent"
    assert led.remaining(1.0) == 0 and led.spent == 2


def test_ledger_honours_expiry_on_its_own_clock() -> None:
    led = LeaseLedger()
    led.accept(lease(limit=5, ttl=60.0), 100.0)   # received at 100 on the gate's clock
    assert led.reserve(159.9).allowed
    assert led.reserve(160.0).reason == "lease_expired"
    assert led.report(160.0)["active"] is False


def test_ledger_ignores_an_older_or_repeated_lease() -> None:
    led = LeaseLedger()
    assert led.accept(lease(seq=3, limit=1), 0.0)
    assert not led.accept(lease(seq=2, limit=9), 0.0)   # a delayed reply
    assert not led.accept(lease(seq=3, limit=9), 0.0)
    assert led.remaining(0.0) == 1 and led.last_seq == 3


def test_release_counts_unused_and_commit_does_not() -> None:
    led = LeaseLedger()
    led.accept(lease(limit=3), 0.0)
    a, b = led.reserve(0.0).ticket, led.reserve(0.0).ticket
    assert a and b
    led.commit(a)
    led.release(b)
    led.release(b)                                      # twice is once
    led.record_exit()
    assert led.report(0.0) | {"epoch": ""} == {"epoch": "", "spent": 2, "unused": 1,
                                               "exits": 1, "last_seq": 1, "active": True}
    # a new lease caps the same counter: limit 3 after spent 2 leaves 1
    led.accept(lease(seq=2, limit=3), 1.0)
    assert led.remaining(1.0) == 1


def test_mode_off_never_limits() -> None:
    led = LeaseLedger()
    led.accept(lease(limit=0, mode="off"), 0.0)
    assert all(led.reserve(0.0).allowed for _ in range(5))


def test_state_round_trip_drops_the_lease_but_keeps_counters() -> None:
    led = LeaseLedger()
    led.accept(lease(limit=4), 0.0)
    led.reserve(0.0)                                    # pending at the crash: stays spent
    back = LeaseLedger.restore(led.state())
    assert (back.epoch, back.spent, back.unused, back.last_seq) == (led.epoch, 1, 0, 1)
    assert back.reserve(0.0).reason == "no_lease"       # its monotonic expiry is void now
    status = led.status(0.0)
    assert status is not None and (status.remaining, status.pending) == (3, 1)


@pytest.mark.parametrize("obj,word", [
    ([], "lease"), ({"seq": 0, "limit": 1, "ttl_s": 5, "mode": "hard"}, "seq"),
    ({"seq": 1, "limit": -1, "ttl_s": 5, "mode": "hard"}, "limit"),
    ({"seq": 1, "limit": True, "ttl_s": 5, "mode": "hard"}, "limit"),
    ({"seq": 1, "limit": 1.5, "ttl_s": 5, "mode": "hard"}, "limit"),
    ({"seq": 1, "limit": 1, "ttl_s": float("inf"), "mode": "hard"}, "ttl_s"),
    ({"seq": 1, "limit": 1, "ttl_s": 0, "mode": "hard"}, "ttl_s"),
    ({"seq": 1, "limit": 1, "ttl_s": 1e9, "mode": "hard"}, "ttl_s"),
    ({"seq": 1, "limit": 1, "ttl_s": 5, "mode": "HARD"}, "mode"),
    ({"seq": 1, "limit": 2**60, "ttl_s": 5, "mode": "hard"}, "limit"),
])
def test_hostile_lease_replies_are_refused(obj: Any, word: str) -> None:
    with pytest.raises(LeaseError, match=word):
        Lease.from_json(obj)


@pytest.mark.parametrize("obj", [None, {"epoch": "../x", "spent": 0, "unused": 0, "exits": 0,
                                        "last_seq": 0},
                                 {"epoch": "a", "spent": 1, "unused": 2, "exits": 0,
                                  "last_seq": 0},
                                 {"epoch": "a", "spent": "1", "unused": 0, "exits": 0,
                                  "last_seq": 0}])
def test_junk_saved_state_is_refused(obj: Any) -> None:
    with pytest.raises(LeaseError):
        LeaseLedger.restore(obj)


def test_recent_entries_block_within_the_window_only() -> None:
    recent = RecentEntries(window_s=600.0)
    recent.record("pass-a", 10.0)
    assert recent.blocked("pass-a", 609.9) and not recent.blocked("pass-b", 11.0)
    assert not recent.blocked("pass-a", 610.0) and len(recent) == 0


def test_recent_entries_are_bounded() -> None:
    recent = RecentEntries(window_s=60.0, max_keys=3)
    for i in range(5):
        recent.record(f"k{i}", float(i))
    assert len(recent) == 3 and not recent.blocked("k0", 5.0) and recent.blocked("k4", 5.0)
    off = RecentEntries(window_s=0.0)
    off.record("k", 0.0)
    assert not off.blocked("k", 0.0)
