"""Every benchmark in turn, each in its own process, tables to stdout.

    python -m bench            # the full runs (9 minutes on a 2-core x86 machine)
    python -m bench --quick    # the quick variants (1.5 minutes there)
    python -m bench --only scanpath pipeline

Run it from the checkout's root (bench/ is not installed with the gate package) with the
gate's Python, plus segno, which draws the codes: on a Pi set up by systemd/install.sh,

    /opt/gate/venv/bin/pip install segno
    cd ~/gate && /opt/gate/venv/bin/python -m bench --quick
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

# name -> (arguments for the full run, arguments for the quick run)
BENCHMARKS: dict[str, tuple[list[str], list[str]]] = {
    "decoders": ([], ["--quick"]),
    "second_chance": ([], ["--quick"]),
    "readrate": ([], ["--quick"]),  # + --photos DIR or GATE_BENCH_PHOTOS for real photos
    "idle": ([], ["--quick"]),
    "scanpath": ([], ["--quick"]),
    "pipeline": ([], ["--quick"]),
    "store": ([], ["--n", "100000"]),
    "passes": ([], ["--n", "100000"]),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="the quick variant of each")
    parser.add_argument("--only", nargs="+", choices=list(BENCHMARKS), metavar="NAME",
                        help=f"run only these ({', '.join(BENCHMARKS)})")
    args = parser.parse_args(argv)
    failed = []
    for name in args.only or BENCHMARKS:
        full, quick = BENCHMARKS[name]
        command = [sys.executable, "-m", f"bench.{name}", *(quick if args.quick else full)]
        print(f"===== {' '.join(['python', *command[1:]])}", flush=True)
        t0 = time.monotonic()
        rc = subprocess.call(command)
        print(f"===== bench.{name}: exit {rc}, {time.monotonic() - t0:.0f} s\n", flush=True)
        if rc:
            failed.append(name)
    if failed:
        print("failed: " + ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
