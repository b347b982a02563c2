"""Occupancy under partitions: many gates, random outages, thousands of steps, seeded.

The REAL server lease and passage services on SQLite and the REAL gate ledger
(gate/occupancy.py); the "network" between them is in memory and drops or delays messages.
Checks DESIGN invariant 8 at every step (people inside never exceed capacity) and reports
how often a person was refused while a place was actually free.

    python -m bench.occupancy                 # the full run (several seeds)
    python -m bench.occupancy --steps 500 --seeds 1
"""

from __future__ import annotations

import argparse
import random
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from gate.occupancy import Lease as GateLease
from gate.occupancy import LeaseLedger
from gate_server.core.config import OccupancySettings
from gate_server.db.models import Gate
from gate_server.db.session import make_engine, make_sessionmaker, migrate, transaction
from gate_server.services import admin, leases, occupancy

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=timezone.utc)


@dataclass
class SimResult:
    seed: int
    steps: int
    gates: int
    capacity: int
    arrivals: int = 0
    admitted: int = 0
    refused: int = 0
    refused_with_room: int = 0   # refused while real people inside < capacity
    offline_with_room: int = 0   # ... of which at a gate cut off from the server
    peak_inside: int = 0
    violations: int = 0          # steps where real people inside > capacity
    final_true: int = 0
    final_count: int = 0


@dataclass
class SimGate:
    id: str
    direction: str
    ledger: LeaseLedger = field(default_factory=LeaseLedger)
    up: bool = True              # reachable from the server
    inbox: list[tuple[int, str, Any]] = field(default_factory=list)  # (deliver_at, kind, x)


def _setup(url: str, n_in: int, n_out: int, capacity: int) -> tuple[Any, list[SimGate]]:
    migrate(url)
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    gates = [SimGate(f"in-{i}", "in") for i in range(n_in)]
    gates += [SimGate(f"out-{i}", "out") for i in range(n_out)]
    with transaction(sessions) as s:
        admin.add_site(s, admin.SiteSpec("hq", capacity=capacity, occupancy="hard",
                                         reset_at=None), T0)
        for g in gates:
            admin.add_gate(s, g.id, "hq", g.direction, T0)
    return (engine, sessions), gates


def run(seed: int, steps: int = 3000, n_in: int = 4, n_out: int = 2, capacity: int = 40,
        workdir: Path | None = None) -> SimResult:
    """One seeded run. Each step is one second: arrivals at random in gates, departures at
    random out gates, gates drop off the network and come back, messages are lost or
    delayed, each online gate syncs its lease every `sync_every` steps."""
    rng = random.Random(seed)
    cfg = OccupancySettings(lease_ttl_s=120.0, lease_margin_s=30.0, hold_s=20.0,
                            traffic_window_s=600.0, min_lease=1, max_lease=10)
    tmp = tempfile.TemporaryDirectory() if workdir is None else None
    base = Path(tmp.name) if tmp else workdir
    assert base is not None
    (engine, sessions), gates = _setup(f"sqlite:///{base / f'sim-{seed}.db'}", n_in, n_out,
                                       capacity)
    res = SimResult(seed, steps, len(gates), capacity)
    inside = 0                     # the truth: people actually inside
    sync_every = 15
    try:
        for step in range(steps):
            now = T0 + timedelta(seconds=step)
            mono = float(step)
            for g in gates:        # partitions: long outages, rarely
                if g.up and rng.random() < 0.004:
                    g.up = False
                elif not g.up and rng.random() < 0.02:
                    g.up = True
            # the network: lease replies arrive late or never
            for g in gates:
                due = [m for m in g.inbox if m[0] <= step]
                g.inbox = [m for m in g.inbox if m[0] > step]
                for _, _, lease in due:
                    g.ledger.accept(lease, mono)
            # lease syncs (reports): the request may be lost on the way or the reply after
            for i, g in enumerate(gates):
                if (step + i) % sync_every or not g.up:
                    continue
                if rng.random() < 0.1:
                    continue                                   # request lost
                with transaction(sessions) as s:
                    gate = s.get(Gate, g.id)
                    assert gate is not None
                    r = g.ledger.report(mono)
                    reply = leases.renew(s, gate, leases.Report(
                        r["epoch"], r["spent"], r["unused"], r["exits"], r["last_seq"],
                        r["active"]), now, cfg)
                if reply["lease"] is not None and rng.random() > 0.1:   # reply lost
                    delay = 0 if rng.random() < 0.8 else rng.randint(1, 40)
                    g.inbox.append((step + delay, "lease",
                                    GateLease.from_json(reply["lease"])))
            # people: arrivals at in gates, departures through out gates
            load = 0.6 if (step // 600) % 2 == 0 else 0.3
            for g in gates:
                if g.direction == "in" and rng.random() < load / n_in * 2:
                    res.arrivals += 1
                    if _enter(sessions, g, now, mono, cfg, rng):
                        inside += 1
                        res.admitted += 1
                    else:
                        res.refused += 1
                        if inside < capacity:
                            res.refused_with_room += 1
                            res.offline_with_room += 0 if g.up else 1
                elif g.direction == "out" and inside > 0 and rng.random() < (
                        inside / capacity) * 0.5:
                    inside -= 1
                    _exit(sessions, g, now, mono, cfg, rng)
            res.peak_inside = max(res.peak_inside, inside)
            if inside > capacity:
                res.violations += 1
        # every gate back, two rounds of syncs: the count converges to the truth
        end = T0 + timedelta(seconds=steps)
        for _ in range(2):
            for g in gates:
                for _, _, lease in g.inbox:
                    g.ledger.accept(lease, float(steps))
                g.inbox.clear()
                with transaction(sessions) as s:
                    gate = s.get(Gate, g.id)
                    assert gate is not None
                    r = g.ledger.report(float(steps))
                    leases.renew(s, gate, leases.Report(
                        r["epoch"], r["spent"], r["unused"], r["exits"], r["last_seq"],
                        r["active"]), end, cfg)
        with transaction(sessions) as s:
            site = admin.site_by_name(s, "hq")
            res.final_count = occupancy.count(s, site, end).inside
        res.final_true = inside
    finally:
        engine.dispose()
        if tmp:
            tmp.cleanup()
    return res


def _enter(sessions: Any, g: SimGate, now: datetime, mono: float, cfg: OccupancySettings,
           rng: random.Random) -> bool:
    """Online: the server decides and holds a place until the door report; offline: the
    gate's ledger. A door that does not open (5%) is reported as such."""
    opened = rng.random() > 0.05
    if g.up:
        with transaction(sessions) as s:
            gate = s.get(Gate, g.id)
            assert gate is not None
            pass_id = f"p{rng.getrandbits(48):012x}"   # a fresh visitor each time
            out = occupancy.on_grant(s, gate, pass_id, now, cfg)
            assert out is not None
            if out.decision != "grant" or out.passage is None:
                return False
            ticket = None
            if out.lease_spend:  # full but for this gate's lease: pay from the ledger
                adm = g.ledger.reserve(mono)
                ticket = adm.ticket
                if ticket is None:
                    occupancy.report_passages(s, gate, [(out.passage.id, False)], now)
                    return False
                if opened:
                    g.ledger.commit(ticket)
                else:
                    g.ledger.release(ticket)
            occupancy.report_passages(s, gate, [(out.passage.id, opened)], now)
        return opened
    adm = g.ledger.reserve(mono)
    if not adm.allowed or adm.ticket is None:
        return False
    if opened:
        g.ledger.commit(adm.ticket)
    else:
        g.ledger.release(adm.ticket)
    return opened


def _exit(sessions: Any, g: SimGate, now: datetime, mono: float, cfg: OccupancySettings,
          rng: random.Random) -> None:
    if not g.up:
        g.ledger.record_exit()
        return
    with transaction(sessions) as s:
        gate = s.get(Gate, g.id)
        assert gate is not None
        # An exit of someone the server did not see enter: no presence, so a plain out.
        out = occupancy.on_grant(s, gate, f"x{rng.getrandbits(48):012x}", now, cfg)
        assert out is not None and out.passage is not None
        occupancy.report_passages(s, gate, [(out.passage.id, True)], now)


def _row(r: SimResult) -> str:
    rate = r.refused_with_room / r.arrivals if r.arrivals else 0.0
    return (f"| {r.seed} | {r.steps} | {r.gates} | {r.capacity} | {r.arrivals} | "
            f"{r.admitted} | {r.refused} | {r.refused_with_room} ({rate:.1%}) | "
            f"{r.offline_with_room} | "
            f"{r.peak_inside} | {r.violations} | {r.final_true} / {r.final_count} |")


HEADER = ("| seed | steps | gates | capacity | arrivals | admitted | refused | "
          "refused with room | of which offline | peak inside | over capacity | final true / counted |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|---|")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=5000)
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--gates-in", type=int, default=6)
    p.add_argument("--gates-out", type=int, default=3)
    p.add_argument("--capacity", type=int, default=60)
    a = p.parse_args()
    print(HEADER)
    for seed in range(1, a.seeds + 1):
        print(_row(run(seed, a.steps, a.gates_in, a.gates_out, a.capacity)), flush=True)


if __name__ == "__main__":
    main()
