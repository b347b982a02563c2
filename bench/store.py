"""The credential store at a million entries: load time, lookup latency, resident memory.

    python -m bench.store              # 1,000,000 credentials
    python -m bench.store --n 100000   # a quicker run

The allowlist CSV is generated (fixed seed) in a temporary directory, then a fresh child
process loads it into a new SQLite store exactly as the daemon does (`load_allowlist_into`),
looks up 20,000 random codes (half enrolled, half unknown) and reports its peak RSS, so the
memory figure is the store's and the gate's imports', not the generator's.
Targets (issue 5): load < 20 s, lookup p99 < 0.2 ms, RSS < 150 MB.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import header, table

LOOKUPS = 20_000


def write_csv(path: Path, n: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as f:
        f.write("code,label,valid_from,valid_until\n")
        for i in range(n):
            until = f"2027-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}"
            f.write(f"PASS-{i:09d}-{rng.getrandbits(32):08x},Person {i},2026-01-01,{until}\n")


def child(csv_path: str, db_path: str, n: int) -> None:
    """Runs in a fresh interpreter: load, look up, report JSON on stdout."""
    import resource

    import gate.daemon  # noqa: F401  (the daemon's imports count towards its memory)
    from gate.verify.credentials import (
        LIST,
        CredentialStore,
        hash_code,
        load_allowlist_into,
    )

    store = CredentialStore(Path(db_path))
    t0 = time.perf_counter()
    loaded = load_allowlist_into(store, Path(csv_path))
    load_s = time.perf_counter() - t0
    codes = []
    with open(csv_path, encoding="utf-8") as f:
        next(f)
        wanted = set(random.Random(2).sample(range(n), min(n, LOOKUPS // 2)))
        for i, line in enumerate(f):
            if i in wanted:
                codes.append(line.split(",", 1)[0])
    codes += [f"NOBODY-{i}" for i in range(LOOKUPS - len(codes))]
    random.Random(3).shuffle(codes)
    hashes = [hash_code(c) for c in codes]
    lat = []
    found = 0
    for h in hashes:
        t = time.perf_counter_ns()
        cred = store.lookup(h, LIST)
        lat.append(time.perf_counter_ns() - t)
        found += cred is not None
    lat.sort()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"count": loaded.count, "problems": len(loaded.problems), "load_s": load_s,
                      "p50_ms": lat[len(lat) // 2] / 1e6, "p99_ms": lat[int(len(lat) * .99)] / 1e6,
                      "found": found, "lookups": len(lat), "rss_mb": rss_mb}))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child[0], args.child[1], args.n)
        return
    header(f"Credential store at {args.n:,} entries", "bench.store")
    with tempfile.TemporaryDirectory() as tmp:
        csv_path, db_path = Path(tmp) / "allowlist.csv", Path(tmp) / "credentials.db"
        write_csv(csv_path, args.n)
        out = subprocess.run([sys.executable, "-m", "bench.store", "--n", str(args.n),
                              "--child", str(csv_path), str(db_path)],
                             check=True, capture_output=True, text=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        db_mb = sum(p.stat().st_size for p in Path(tmp).glob("credentials.db*")) / 2**20
    rows = [["load (CSV -> SQLite, one transaction)", f"{r['load_s']:.1f} s", "< 20 s"],
            ["lookup p50", f"{r['p50_ms'] * 1000:.1f} us", ""],
            ["lookup p99", f"{r['p99_ms'] * 1000:.1f} us", "< 200 us"],
            ["peak RSS of the loading process", f"{r['rss_mb']:.0f} MB", "< 150 MB"],
            ["database on disk", f"{db_mb:.0f} MB", ""]]
    print(table(["measure", "value", "target"], rows))
    print(f"\n{r['count']:,} loaded, {r['problems']} problems; {r['found']:,} of "
          f"{r['lookups']:,} lookups were enrolled codes (half by design)")


if __name__ == "__main__":
    main()
