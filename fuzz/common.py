"""Shared fuzz plumbing: the result of a campaign, peak RSS, seeds and markdown tables."""

from __future__ import annotations

import collections
import random
import resource
import sys
import time
import traceback
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field


def rng_for(seed: int, *parts: object) -> random.Random:
    """A stable generator per campaign and case: the same inputs on every run and machine."""
    return random.Random(zlib.crc32("/".join(map(str, (seed, *parts))).encode()))


def peak_rss_mb(children: bool = False) -> float:
    """Peak resident set size of this process (or of its waited-for children), in MB."""
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    return resource.getrusage(who).ru_maxrss / 1024  # Linux reports KiB


@dataclass
class Result:
    """What one campaign found. `failures` counts must-be-zero properties by name; `info`
    holds figures that describe the run (not failures)."""

    campaign: str
    cases: int = 0
    failures: collections.Counter[str] = field(default_factory=collections.Counter)
    info: collections.Counter[str] = field(default_factory=collections.Counter)
    examples: dict[str, str] = field(default_factory=dict)  # first example of each failure
    seconds: float = 0.0
    rss_mb: float = 0.0

    def fail(self, kind: str, example: str = "") -> None:
        self.failures[kind] += 1
        self.examples.setdefault(kind, example[:300])

    def crashed(self, where: str, exc: BaseException) -> None:
        """An exception escaped the code under test: an uncaught exception."""
        last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
        at = f" at {last[0].filename.rsplit('/', 1)[-1]}:{last[0].lineno}" if last else ""
        self.fail("uncaught exceptions", f"{where}: {type(exc).__name__}: {exc}{at}")

    @property
    def ok(self) -> bool:
        return not sum(self.failures.values())


class timed_result:
    """`with timed_result(result):` fills in seconds and peak RSS."""

    def __init__(self, result: Result, children: bool = False) -> None:
        self.result, self.children = result, children

    def __enter__(self) -> Result:
        self.t0 = time.monotonic()
        return self.result

    def __exit__(self, *exc: object) -> None:
        self.result.seconds = time.monotonic() - self.t0
        self.result.rss_mb = peak_rss_mb()
        if self.children:
            self.result.info["peak RSS of the daemons, MB"] = round(peak_rss_mb(children=True))


def table(result: Result, properties: list[str]) -> str:
    """A markdown table: one row per must-be-zero property, then the run's own figures."""
    lines = [f"**{result.campaign}**: {result.cases:,} cases, {result.seconds:.1f} s, "
             f"peak RSS {result.rss_mb:.0f} MB", "", "| property | count |", "|---|---|"]
    for name in properties + sorted(set(result.failures) - set(properties)):
        lines.append(f"| {name} | {result.failures[name]:,} |")
    for name, value in sorted(result.info.items()):
        lines.append(f"| ({name}) | {value:,} |")
    for name, example in result.examples.items():
        lines.append(f"\nfirst of {name}: `{example}`")
    return "\n".join(lines)


def report(result: Result, properties: list[str]) -> int:
    print(table(result, properties), flush=True)
    return 0 if result.ok else 1


def chunks(n: int, size: int) -> Iterator[range]:
    for start in range(0, n, size):
        yield range(start, min(n, start + size))


def progress(done: int, total: int, every: int) -> None:
    if done and done % every == 0:
        print(f"  ... {done:,} of {total:,}", file=sys.stderr, flush=True)
