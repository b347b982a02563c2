"""Signed passes: payload size and QR version per kind, signature and whole-verifier time
per pass, and the revocation list at scale (load time, file size, lookup p50/p99).

    python -m bench.passes              # 1,000,000 revoked ids
    python -m bench.passes --n 100000   # quicker
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import segno
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.common import header, table
from gate.passes import (
    KINDS,
    Claims,
    KeyRing,
    PassKey,
    RevocationStore,
    Window,
    code_at,
    issue,
    kid_for,
    parse_text,
    pass_secret,
    verify_signature,
)
from gate.passes.keys import raw_public_key
from gate.verify.passes import PassPolicy, PassVerifier

TZ = ZoneInfo("Europe/Berlin")
NOW = int(datetime(2026, 6, 1, 12, 0, tzinfo=TZ).timestamp())   # a Monday noon
SITE_KEY = bytes(range(32))
ID_BYTES = 5              # what gate-server issues


def quantiles_us(samples: list[float]) -> tuple[float, float, float]:
    a = np.asarray(samples) * 1e6
    return float(np.median(a)), float(np.percentile(a, 95)), float(np.percentile(a, 99))


def sample_claims(kind: str, schedule: bool, rotating: bool, pass_id: bytes,
                  later: bool = False) -> Claims:
    return Claims(pass_id=pass_id, sites=("hq",), kind=kind,
                  valid_from=NOW + 86400 if later else None,
                  valid_until=NOW + 365 * 86400,
                  schedule=(Window(0b0011111, 7 * 60, 19 * 60),) if schedule else (),
                  rotating=rotating)


def size_table(sk: Ed25519PrivateKey) -> None:
    rows = []
    for kind in KINDS:
        for later in (False, True):
            for schedule in (False, True):
                for rotating in (False, True):
                    c = sample_claims(kind, schedule, rotating, os.urandom(ID_BYTES), later)
                    text = issue(c, sk)
                    shown = text + ("*" + "0" * 8 if rotating else "")
                    qr = segno.make_qr(shown, error="q", boost_error=False)
                    rows.append([kind, "yes" if later else "no", "yes" if schedule else "no",
                                 "yes" if rotating else "no",
                                 len(parse_text(text).envelope.payload), len(text), len(shown),
                                 f"{qr.version}-{qr.error}", qr.mode,
                                 "yes" if len(shown) <= 180 else "NO"])
    print(f"Payload size ({ID_BYTES}-byte pass id, site 'hq', one schedule window; 'starts "
          "later' carries valid_from; QR by segno, ECC Q, not boosted)")
    print(table(["kind", "starts later", "schedule", "rotating", "claims B", "static chars",
                 "shown chars", "QR", "mode", "<=180"], rows))
    print()


def verify_table(sk: Ed25519PrivateKey, tmp: Path, n: int) -> None:
    pub = raw_public_key(sk.public_key())
    ring = KeyRing((PassKey(kid_for(pub), pub, 0),), synced_at=NOW - 60)
    store = RevocationStore(tmp / "verify.db")
    store.replace((os.urandom(ID_BYTES) for _ in range(1000)), "bench")
    verifier = PassVerifier(lambda: ring, lambda: {"hq": SITE_KEY}, store,
                            PassPolicy("hq", TZ, max_key_age_s=86400))
    static = [issue(sample_claims("visitor", False, False, os.urandom(ID_BYTES)), sk)
              for _ in range(n)]
    rot_claims = [sample_claims("contractor", True, True, os.urandom(ID_BYTES)) for _ in range(n)]
    rotating = [issue(c, sk) + "*" + code_at(pass_secret(SITE_KEY, c.pass_id), NOW)
                for c in rot_claims]
    rows = []
    envelopes = [parse_text(t).envelope for t in static]
    samples = []
    for env in envelopes:
        t0 = time.perf_counter()
        ok = verify_signature(env, pub)
        samples.append(time.perf_counter() - t0)
        assert ok
    rows.append(["signature only (pycose Ed25519)", n, *quantiles_us(samples)])
    for name, texts in (("whole verifier, static pass", static),
                        ("whole verifier, rotating + schedule", rotating)):
        samples = []
        for text in texts:
            t0 = time.perf_counter()
            d = verifier.decide(text, NOW)
            samples.append(time.perf_counter() - t0)
            assert d.verdict == "grant", d
        rows.append([name, n, *quantiles_us(samples)])
    print("Verification per pass (grants; microseconds)")
    print(table(["what", "passes", "median us", "p95 us", "p99 us"], rows))
    print()
    store.close()


def revocation_table(tmp: Path, n: int, lookups: int) -> None:
    rng = random.Random(11)
    ids = [rng.randbytes(ID_BYTES) for _ in range(n)]
    path = tmp / "revoked.db"
    store = RevocationStore(path)
    t0 = time.perf_counter()
    store.replace(ids, "full-1")
    load_s = time.perf_counter() - t0
    size = sum(p.stat().st_size for p in tmp.glob("revoked.db*"))
    t0 = time.perf_counter()
    store.update((rng.randbytes(ID_BYTES) for _ in range(1000)), ids[:1000], "delta-2")
    delta_s = time.perf_counter() - t0
    probes = [rng.choice(ids) if i % 2 else rng.randbytes(ID_BYTES) for i in range(lookups)]
    samples, hits = [], 0
    for pid in probes:
        t0 = time.perf_counter()
        hits += store.revoked(pid)
        samples.append(time.perf_counter() - t0)
    p50, p95, p99 = quantiles_us(samples)
    print(f"Revocation list (SQLite WAL, {ID_BYTES}-byte ids; half the probes revoked)")
    print(table(["revoked ids", "full load s", "1k+1k delta ms", "file MB", "lookups",
                 "p50 us", "p95 us", "p99 us"],
                [[n, round(load_s, 2), round(delta_s * 1e3, 1), round(size / 1e6, 1),
                  lookups, p50, p95, p99]]))
    store.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="revoked ids")
    parser.add_argument("--passes", type=int, default=2000, help="passes to verify")
    parser.add_argument("--lookups", type=int, default=20000)
    args = parser.parse_args(argv)
    header("Signed passes", "bench.passes")
    sk = Ed25519PrivateKey.generate()
    size_table(sk)
    with tempfile.TemporaryDirectory() as tmp:
        verify_table(sk, Path(tmp), args.passes)
        revocation_table(Path(tmp), args.n, args.lookups)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
