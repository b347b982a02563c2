"""Every fuzz campaign in turn, each in its own process (so each peak RSS is its own),
markdown tables to stdout. Exit 1 if any campaign found a failure.

    python -m fuzz                 # full size: 100,000 payloads, 10,000 replies per endpoint,
                                   # 3,000 allowlists, 5,000 configs, 30 kills per kind
    python -m fuzz --quick         # a small run of each
    python -m fuzz payloads        # or any of: payloads replies files kill
    python -m fuzz replies -- verify --n 2000   # arguments after -- go to the campaign
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

CAMPAIGNS = ["payloads", "replies", "files", "kill"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fuzz", description=__doc__.split("\n")[0])
    parser.add_argument("campaigns", nargs="*", metavar="CAMPAIGN",
                        help=f"any of {', '.join(CAMPAIGNS)} (default: all)")
    parser.add_argument("--quick", action="store_true", help="the small variant of each")
    parser.add_argument("--seed", type=int, default=1)
    args, extra = parser.parse_known_args(argv)
    extra = [a for a in extra if a != "--"]
    unknown = set(args.campaigns) - set(CAMPAIGNS)
    if unknown:
        parser.error(f"unknown campaign {', '.join(sorted(unknown))}")
    failed = []
    for name in args.campaigns or CAMPAIGNS:
        command = [sys.executable, "-m", f"fuzz.{name}", "--seed", str(args.seed),
                   *(["--quick"] if args.quick else []), *extra]
        print(f"===== python -m fuzz.{name} {' '.join(command[3:])}", flush=True)
        t0 = time.monotonic()
        rc = subprocess.call(command)
        print(f"===== fuzz.{name}: exit {rc}, {time.monotonic() - t0:.0f} s\n", flush=True)
        if rc:
            failed.append(name)
    if failed:
        print("failures found by: " + ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
