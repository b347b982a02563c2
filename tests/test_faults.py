"""Faults: one owner with a lock; the indicators hear only empty <-> not-empty changes."""

from __future__ import annotations

import threading

from gate.faults import Faults


def test_faults_report_transitions_once_and_survive_threads() -> None:
    faults = Faults()
    faults.set("clock", True)  # before anything is bound: kept, reported at bind
    seen: list[bool] = []
    faults.bind(seen.append)
    assert seen == [True]
    faults.set("clock", True)
    faults.set("relay", True)
    assert seen == [True] and faults.names() == ["clock", "relay"] and "relay" in faults
    faults.set("clock", False)
    faults.set("relay", False)
    assert seen == [True, False] and not faults

    def flip(name: str) -> None:
        for _ in range(2000):
            faults.set(name, True)
            faults.set(name, False)

    threads = [threading.Thread(target=flip, args=(f"f{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert faults.names() == [] and seen[-1] is False
    assert all(a != b for a, b in zip(seen, seen[1:])), "a transition was reported twice"
