"""CPU time per request of the three hot gate requests, one endpoint at a time.

    python -m bench.server_cpu                 # 3,000 requests per endpoint, one server
    python -m bench.server_cpu --profile DIR   # the same under py-spy: DIR/<endpoint>.txt

Wall-clock latency on a shared machine says more about the neighbours than about the server;
the CPU seconds the server process (and PostgreSQL) spent divided by the requests served
barely depend on contention. One `gate-server serve` process on a throwaway PostgreSQL with
1,000 gates on 10 sites of 1,000 passes; a closed loop of `--concurrency` aiohttp clients
sends: `sync 304` (the gate holds the site's list), `sync 200` (a delta of one pass: the
cursor one revision behind), `events` (one decision event per upload) and `floor 404` (a
path no route owns: the HTTP server and the app's middleware alone, no database).
With --profile the server runs under `py-spy record --format raw` (pip install py-spy) and
each endpoint's samples are summarised by the layer they were spent in (innermost match).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.server_fleet import Fleet, GateState, seed_fleet
from bench.server_scale import Servers, load, start_servers, tree_cpu
from tests.server.pg import PgCluster

KINDS = ("sync 304", "sync 200", "events", "floor 404")
# Where a sample's time went: the innermost frame whose file matches wins.
LAYERS = (("json", ("json/", "orjson")), ("pydantic", ("pydantic",)),
          ("psycopg", ("psycopg",)), ("sqlalchemy", ("sqlalchemy",)),
          ("prometheus", ("prometheus_client",)), ("threadpool hop", ("anyio", "threading",
                                                                      "concurrent/futures")),
          ("fastapi", ("fastapi",)), ("starlette", ("starlette",)),
          ("uvicorn/asyncio", ("uvicorn", "asyncio", "h11", "httptools", "uvloop")),
          ("gate_server", ("gate_server",)))
# Waiting, not working (py-spy's idle detection misses these), and start-up imports.
IDLE = ("Condition.wait", "Connection.wait", "EpollSelector.select", "importlib")


def request_args(kind: str, g: GateState, behind: dict[str, str]) -> tuple[str, str,
                                                                            dict[str, Any]]:
    headers = {"Authorization": "Bearer " + g.token, "User-Agent": "gate/bench"}
    if kind == "sync 304":
        headers["If-None-Match"] = g.etag
        return "GET", "/v1/credentials", {"headers": headers, "params": {"since": g.cursor}}
    if kind == "floor 404":  # no route, no database: what uvicorn + the app cost alone
        return "GET", "/v1/nothing-here", {"headers": headers}
    if kind == "sync 200":
        return "GET", "/v1/credentials", {"headers": headers,
                                          "params": {"since": behind[g.cursor]}}
    return "POST", "/v1/events", {"headers": headers,
                                  "json": {"gate": g.id, "events": [g.next_event()]}}


async def drive(url: str, fleet: Fleet, kind: str, n: int, concurrency: int) -> int:
    """n requests of one kind from a closed loop; returns how many got the expected status."""
    import aiohttp
    epoch_rev = {g.cursor for g in fleet.gates}
    behind = {c: f"{c.split('-')[0]}-{int(c.split('-')[1]) - 1}" for c in epoch_rev}
    want = {"sync 304": 304, "sync 200": 200, "events": 200, "floor 404": 404}[kind]
    ok = 0
    queue = iter(range(n))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as http:

        async def worker() -> None:
            nonlocal ok
            for i in queue:
                method, path, kw = request_args(kind, fleet.gates[i % len(fleet.gates)], behind)
                async with http.request(method, url + path, **kw) as r:
                    await r.read()
                    ok += r.status == want
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return ok


def summarise(raw: Path, out: Path) -> None:
    """py-spy raw (collapsed) stacks -> share of samples per layer and the top frames."""
    layers: Counter[str] = Counter()
    frames: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        c = int(count)
        parts = stack.split(";")
        if any(k in parts[-1] for k in IDLE) or "importlib" in stack:
            continue
        total += c
        # py-spy frame: "function (file:line)"
        layer = "other"
        for frame in reversed(parts):
            hit = next((name for name, keys in LAYERS if any(k in frame for k in keys)), None)
            if hit:
                layer = hit
                break
        layers[layer] += c
        frames[parts[-1].split(" (")[0] + " " + parts[-1].rsplit("/", 1)[-1]] += c
    lines = [f"{total} samples"] + [f"{k:<18}{v / max(1, total):>7.1%}"
                                    for k, v in layers.most_common()]
    lines += ["", "top innermost frames:"] + [f"{v / max(1, total):>7.1%}  {k}"
                                                for k, v in frames.most_common(25)]
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines[:len(layers) + 1]))


def run(fleet: Fleet, args: argparse.Namespace) -> None:
    print(f"load avg {load()}; {args.requests} requests per endpoint, concurrency "
          f"{args.concurrency}")
    print(f"{'endpoint':<10}{'ok':>6}{'server ms/req':>15}{'postgres ms/req':>17}"
          f"{'wall s':>8}")
    pg_pid = fleet.postmaster_pid()
    for kind in KINDS:
        servers, spy = start(fleet, args, kind)
        try:
            pid = servers.procs[0].pid if spy is None else server_pid(spy.pid)
            asyncio.run(drive(servers.urls[0], fleet, kind, args.warmup, args.concurrency))
            c0, p0, t0 = tree_cpu(pid), tree_cpu(pg_pid), time.monotonic()
            ok = asyncio.run(drive(servers.urls[0], fleet, kind, args.requests,
                                   args.concurrency))
            c1, p1, t1 = tree_cpu(pid), tree_cpu(pg_pid), time.monotonic()
        finally:
            servers.stop()
            if spy is not None:
                spy.wait(60)
        print(f"{kind:<10}{ok:>6}{(c1 - c0) / args.requests * 1000:>15.2f}"
              f"{(p1 - p0) / args.requests * 1000:>17.2f}{t1 - t0:>8.1f}", flush=True)
        if spy is not None:
            summarise(args.profile / f"{kind.replace(' ', '-')}.raw",
                      args.profile / f"{kind.replace(' ', '-')}.txt")


def server_pid(spy_pid: int) -> int:
    from bench.server_scale import children
    kids = children(spy_pid)
    return kids[0] if kids else spy_pid


def start(fleet: Fleet, args: argparse.Namespace,
          kind: str) -> tuple[Servers, subprocess.Popen[bytes] | None]:
    if args.profile is None:
        return start_servers(fleet, 1, args.extra_path), None
    # py-spy as the parent (ptrace allowed), sampling the server it starts.
    from tests.server.pg import free_port
    args.profile.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (args.extra_path, os.getcwd(),
                                                    env.get("PYTHONPATH")) if p)
    spy = subprocess.Popen(
        [str(Path(sys.executable).with_name("py-spy")), "record", "--format", "raw",
         "--rate", "250", "--nonblocking", "-o",
         str(args.profile / f"{kind.replace(' ', '-')}.raw"), "--", sys.executable, "-m",
         "gate_server", "--db", fleet.url, "--secret-file", str(fleet.secret_file), "serve",
         "--listen", f"127.0.0.1:{port}"], env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    import requests
    deadline = time.monotonic() + 30
    while True:
        try:
            requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).raise_for_status()
            break
        except requests.RequestException:
            if time.monotonic() > deadline or spy.poll() is not None:
                spy.kill()
                raise RuntimeError("gate-server under py-spy did not start") from None
            time.sleep(0.1)

    class _Stop(Servers):
        def stop(self) -> None:  # SIGTERM the server, py-spy then writes its file and exits
            for k in __import__("bench.server_scale").server_scale.children(spy.pid):
                os.kill(k, 15)

    return _Stop([spy], [f"http://127.0.0.1:{port}"]), spy


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.server_cpu",
                                description=__doc__.split("\n")[0])
    p.add_argument("--requests", type=int, default=3000)
    p.add_argument("--warmup", type=int, default=300)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--gates", type=int, default=1000)
    p.add_argument("--profile", type=Path, help="run under py-spy; write summaries here")
    p.add_argument("--extra-path", help="prepended to the server's PYTHONPATH")
    args = p.parse_args(argv)
    cluster = PgCluster().start()
    try:
        fleet = seed_fleet(cluster, "cpu", sites=10, gates=args.gates, passes_per_site=1000)
        run(fleet, args)
    finally:
        cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
