"""Token bucket per key (gate id), on an injected monotonic clock."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    at: float
    alarmed_at: float | None = None


class TokenBuckets:
    def __init__(self, burst: float, per_s: float, clock: Callable[[], float]) -> None:
        self.burst, self.per_s, self.clock = burst, per_s, clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """0.0 when allowed, else the seconds until the next token (for Retry-After)."""
        with self._lock:
            now = self.clock()
            b = self._buckets.setdefault(key, _Bucket(self.burst, now))
            # max(0, ...): a clock that steps back must not drain the bucket.
            b.tokens = min(self.burst, b.tokens + max(0.0, now - b.at) * self.per_s)
            b.at = now
            if b.tokens >= 1.0:
                b.tokens -= 1.0
                return 0.0
            return (1.0 - b.tokens) / self.per_s

    def should_alarm(self, key: str, interval_s: float) -> bool:
        """True at most once per interval per key: one stored alarm per flood, not per request."""
        with self._lock:
            now = self.clock()
            b = self._buckets[key]
            if b.alarmed_at is not None and now - b.alarmed_at < interval_s:
                return False
            b.alarmed_at = now
            return True
