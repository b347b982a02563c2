"""The central server at fleet scale, on a throwaway PostgreSQL: simulated gates, sync cost
by list size and by changes, and database size per million events.

    python -m bench.server_scale            # 10,000 gates for 60 s (+10 s warm-up), ~4 min
    python -m bench.server_scale --quick    # 300 gates for 5 s, small lists (seconds)

Each simulated gate syncs every 60 s with If-None-Match and its cursor (a 304 unless its site
changed) and uploads one event a minute, on a fixed open-loop schedule: 2 x gates / 60
requests/s. Latency is counted from the *scheduled* send time, so a server or load generator
that falls behind shows up in the figures. Server processes, load generator and PostgreSQL
share this machine. Loopback only. Needs PostgreSQL 15 (apt-get install postgresql), aiohttp.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from bench.server_fleet import Fleet, GateState, change_passes, insert_events, seed_fleet, site_state
from tests.server.pg import PgCluster, free_port

TICK = os.sysconf("SC_CLK_TCK")


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def cpu_s(pid: int) -> float:
    """utime + stime (+ reaped children) of one process, in seconds."""
    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(x) for x in f[11:15]) / TICK


def children(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(d.name))
            except OSError:
                pass
    return out


def tree_cpu(pid: int) -> float:
    return cpu_s(pid) + sum(cpu_s(c) for c in children(pid) if Path(f"/proc/{c}").exists())


@dataclass
class Servers:
    procs: list[subprocess.Popen[bytes]]
    urls: list[str]

    def stop(self) -> None:
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


def start_servers(fleet: Fleet, n: int, extra_path: str | None) -> Servers:
    """n `gate-server serve` processes, one port each: the deployment the README describes."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (extra_path, os.getcwd(),
                                                    env.get("PYTHONPATH")) if p)
    procs, urls = [], []
    for _ in range(n):
        port = free_port()
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "gate_server", "--db", fleet.url, "--secret-file",
             str(fleet.secret_file), "serve", "--listen", f"127.0.0.1:{port}"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        urls.append(f"http://127.0.0.1:{port}")
    servers = Servers(procs, urls)
    import requests
    deadline = time.monotonic() + 30
    for url in urls:
        while True:
            try:
                requests.get(url + "/healthz", timeout=1).raise_for_status()
                break
            except requests.RequestException:
                if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                    servers.stop()
                    raise RuntimeError("gate-server did not start") from None
                time.sleep(0.1)
    return servers


@dataclass
class Stats:
    lat: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    status: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    lag: list[float] = field(default_factory=list)
    errors: int = 0


async def run_load(fleet: Fleet, urls: list[str], duration: float, warmup: float,
                   pool: int, change_every: float) -> tuple[Stats, float]:
    import aiohttp
    rng = random.Random(7)
    gates = fleet.gates
    # (offset in the minute, gate index, kind): each gate syncs once and uploads once a minute.
    minute = sorted([(rng.uniform(0, 60), i, "sync") for i in range(len(gates))]
                    + [(rng.uniform(0, 60), i, "events") for i in range(len(gates))])
    total = warmup + duration
    schedule = [(m * 60 + off, i, kind) for m in range(int(total // 60) + 1)
                for off, i, kind in minute if m * 60 + off < total]
    stats = Stats()
    conn = aiohttp.TCPConnector(limit=pool, limit_per_host=0)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=conn, timeout=timeout) as http:
        t0 = time.monotonic()

        async def one(at: float, g: GateState, kind: str) -> None:
            url = urls[g.index % len(urls)]  # as a proxy would spread them
            headers = {"Authorization": "Bearer " + g.token, "User-Agent": "gate/bench"}
            try:
                if kind == "sync":
                    headers["If-None-Match"] = g.etag
                    async with http.get(url + "/v1/credentials", headers=headers,
                                        params={"since": g.cursor}) as r:
                        if r.status == 200:
                            body = await r.json()
                            g.cursor, g.etag = body["cursor"], r.headers["ETag"]
                        else:
                            await r.read()
                        status = r.status
                else:
                    async with http.post(url + "/v1/events", headers=headers,
                                         json={"gate": g.id, "events": [g.next_event()]}) as r:
                        await r.read()
                        status = r.status
            except (TimeoutError, aiohttp.ClientError):
                stats.errors += 1
                return
            done = time.monotonic() - t0
            if at >= warmup:
                route = "sync" if kind == "sync" else "events"
                stats.lat[f"{route} {status}"].append(done - at)
                stats.status[f"{route} {status}"] += 1

        async def changer() -> None:
            while True:
                await asyncio.sleep(change_every)
                await asyncio.to_thread(change_passes, fleet, rng.randrange(fleet.sites), 1)

        change_task = asyncio.create_task(changer()) if change_every > 0 else None
        tasks = set()
        for at, i, kind in schedule:
            delay = at - (time.monotonic() - t0)
            if delay > 0:
                await asyncio.sleep(delay)
            if at >= warmup:
                stats.lag.append(time.monotonic() - t0 - at)
            task = asyncio.create_task(one(at, gates[i], kind))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await asyncio.gather(*tasks)
        if change_task:
            change_task.cancel()
    return stats, duration


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] * 1000 if xs else float("nan")


def measure_load(fleet: Fleet, args: argparse.Namespace) -> None:
    servers = start_servers(fleet, args.processes, args.extra_path)
    try:
        before_load, pg_pid = load(), fleet.postmaster_pid()
        cpu0 = [tree_cpu(p.pid) for p in servers.procs]
        pg0, me0 = tree_cpu(pg_pid), resource.getrusage(resource.RUSAGE_SELF)
        w0 = time.monotonic()
        stats, _ = asyncio.run(run_load(fleet, servers.urls, args.duration, args.warmup,
                                        args.pool, args.change_every))
        wall = time.monotonic() - w0
        cpu1 = [tree_cpu(p.pid) for p in servers.procs]
        pg1, me1 = tree_cpu(pg_pid), resource.getrusage(resource.RUSAGE_SELF)
        after_load = load()
    finally:
        servers.stop()
    n = sum(stats.status.values())
    print(f"\n{len(fleet.gates)} gates, {args.processes} server process(es), pool {args.pool}, "
          f"{args.duration:g} s measured after {args.warmup:g} s warm-up; "
          f"load avg before {before_load} after {after_load}")
    print(f"requests/s {n / args.duration:.1f} (target {2 * len(fleet.gates) / 60:.1f}), "
          f"errors {stats.errors}, dispatch lag p99 {pct(stats.lag, 0.99):.1f} ms")
    print(f"{'endpoint status':<16}{'count':>8}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    for key in sorted(stats.lat):
        xs = stats.lat[key]
        print(f"{key:<16}{len(xs):>8}{pct(xs, .5):>9.1f}{pct(xs, .99):>9.1f}"
              f"{max(xs) * 1000:>9.1f}")
    every = [x for xs in stats.lat.values() for x in xs]
    print(f"{'all':<16}{len(every):>8}{pct(every, .5):>9.1f}{pct(every, .99):>9.1f}")
    srv = sum(b - a for a, b in zip(cpu0, cpu1))
    me = me1.ru_utime + me1.ru_stime - me0.ru_utime - me0.ru_stime
    print(f"CPU (cores busy over {wall:.0f} s wall incl. warm-up): server {srv / wall:.2f} "
          f"({srv / max(1, n) * 1000 * args.duration / wall:.2f} ms/request), PostgreSQL "
          f"{(pg1 - pg0) / wall:.2f}, load generator {me / wall:.2f}")


def measure_sync(cluster: PgCluster, fleet_args: argparse.Namespace, sizes: list[int],
                 changes: list[int]) -> None:
    import requests
    print(f"\nsync cost by list size (one server process, median of 3; load avg {load()})")
    print(f"{'passes':>8}{'full ms':>9}{'full kB':>9}"
          + "".join(f"{f'Δ{c} ms':>10}{f'Δ{c} kB':>9}" for c in changes))
    for size in sizes:
        fleet = seed_fleet(cluster, f"sync{size}", sites=1, gates=1, passes_per_site=size)
        servers = start_servers(fleet, 1, fleet_args.extra_path)
        try:
            g = fleet.gates[0]
            auth = {"Authorization": "Bearer " + g.token}

            def get(since: str | None, servers: Servers = servers,
                    auth: dict[str, str] = auth) -> tuple[float, int]:
                times, n = [], 0
                for _ in range(3):
                    t = time.perf_counter()
                    r = requests.get(servers.urls[0] + "/v1/credentials", headers=auth,
                                     params={"since": since} if since else {}, timeout=120)
                    times.append(time.perf_counter() - t)
                    r.raise_for_status()
                    n = len(r.content)
                return statistics.median(times) * 1000, n

            full_ms, full_b = get(None)
            row = f"{size:>8}{full_ms:>9.1f}{full_b / 1000:>9.0f}"
            for c in changes:
                cursor = site_state(fleet, 0)[1]
                change_passes(fleet, 0, min(c, size))
                ms, b = get(cursor)
                row += f"{ms:>10.1f}{b / 1000:>9.1f}"
            print(row, flush=True)
        finally:
            servers.stop()


def measure_size(cluster: PgCluster, events: int) -> None:
    fleet = seed_fleet(cluster, "size", sites=1, gates=100, passes_per_site=0)
    t = time.perf_counter()
    size = insert_events(fleet, events)
    dt = time.perf_counter() - t
    print(f"\nevents table after {events:,} decision events (bulk COPY {dt:.0f} s): "
          f"{size / 1e6:.0f} MB total incl. indexes and TOAST = "
          f"{size / events * 1e6 / 1e9:.2f} GB per million events ({size / events:.0f} B/event)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.server_scale",
                                description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="seconds: a smoke run")
    p.add_argument("--gates", type=int, default=10_000)
    p.add_argument("--sites", type=int, default=100)
    p.add_argument("--passes-per-site", type=int, default=1000)
    p.add_argument("--duration", type=float, default=60.0)
    p.add_argument("--warmup", type=float, default=10.0)
    p.add_argument("--processes", type=int, default=2, help="gate-server serve processes")
    p.add_argument("--pool", type=int, default=64, help="client connections (keep-alive)")
    p.add_argument("--change-every", type=float, default=5.0,
                   help="seconds between pass changes (a random site; its gates get a delta)")
    p.add_argument("--extra-path", help="prepended to the servers' PYTHONPATH (e.g. a "
                   "directory holding uvloop and httptools, which uvicorn then uses)")
    p.add_argument("--only", nargs="+", choices=["load", "sync", "size"],
                   default=["load", "sync", "size"])
    p.add_argument("--runs", type=int, default=1, help="repeat the load measurement")
    args = p.parse_args(argv)
    sizes, changes, events = [1_000, 10_000, 100_000], [1, 100, 10_000], 1_000_000
    if args.quick:
        args.gates, args.sites, args.passes_per_site = 300, 10, 100
        args.duration, args.warmup, args.change_every = 5.0, 1.0, 1.0
        sizes, changes, events = [1_000], [1, 100], 20_000
    cluster = PgCluster().start()
    try:
        if "load" in args.only:
            fleet = seed_fleet(cluster, "load", args.sites, args.gates, args.passes_per_site)
            for _ in range(args.runs):
                measure_load(fleet, args)
        if "sync" in args.only:
            measure_sync(cluster, args, sizes, changes)
        if "size" in args.only:
            measure_size(cluster, events)
    finally:
        cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
