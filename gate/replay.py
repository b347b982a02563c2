"""`gate replay`: decide on recorded frames with a given config, the relay never touched.

Frames are decoded as the daemon would (the same decoder, second chance and main-stream
looks: a file larger than [camera] size is the main stream and its downscale the lores one),
the repeat guard runs on frame times spaced at [camera] fps, and each presented code goes
through the offline verifier chain (the allowlist and the synced cache, read from a copy:
the server is never asked, the gate's state is never written). With `journal`, decisions are
also written to that journal file (a separate file, never the gate's own).
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .config import Config
from .journal import Journal
from .scan.camera import Frame, load_luma, lores_and_main
from .scan.scanner import Scanner
from .verify import build_chain
from .verify.credentials import CredentialStore, load_allowlist_into


@dataclass
class FrameResult:
    path: Path
    decode_ms: float
    codes: int
    decisions: list[str] = field(default_factory=list)  # one line per presented code


@dataclass
class ReplaySummary:
    frames: list[FrameResult]

    @property
    def read(self) -> int:
        return sum(1 for f in self.frames if f.codes)

    def timing(self) -> tuple[float, float]:
        """Median and 95th percentile of the decode time, ms."""
        t = sorted(f.decode_ms for f in self.frames)
        if not t:
            return 0.0, 0.0
        return statistics.median(t), t[min(len(t) - 1, int(round(0.95 * (len(t) - 1))))]


def replay(cfg: Config, paths: Sequence[Path], journal_path: Path | None = None,
           say: Callable[[str], None] = print) -> ReplaySummary:
    """Decode and decide on every frame in ``paths`` in order; a line per frame."""
    interval_ns = int(1e9 / cfg.camera.fps)
    scanner = Scanner.from_config(cfg.decoder)
    results = []
    with tempfile.TemporaryDirectory(prefix="gate-replay-") as tmp:
        store = _offline_store(cfg, Path(tmp))
        journal = Journal(journal_path, cfg.gate.id) if journal_path is not None else None
        try:
            chain = build_chain(cfg, store, None)
            for i, path in enumerate(paths):
                lores, main = lores_and_main(
                    load_luma(path), cfg.camera.size if cfg.camera.main_size else None)
                frame = Frame(luma=lores, ts_ns=i * interval_ns, seq=i + 1, main=main)
                t0 = time.perf_counter()
                presented = scanner.scan(frame)
                decode_ms = (time.perf_counter() - t0) * 1e3
                r = FrameResult(path, decode_ms, len(scanner.last_codes))
                for p in presented:
                    d = chain.check(p.code.sha256, p.code.data, time.time())
                    r.decisions.append(f"{d.verdict} ({d.reason}) label={d.label!r} "
                                       f"source={d.source} code={p.code.sha256[:12]}…")
                    if journal is not None:
                        journal.record("decision", verdict=d.verdict, reason=d.reason,
                                       source=d.source, label=d.label,
                                       credential_id=d.credential_id,
                                       code_sha256=p.code.sha256, latency_ms=0.0,
                                       replay=str(path.name))
                say(f"{path.name}: {decode_ms:.1f} ms, {r.codes} code(s)"
                    + "".join(f"\n  decision: {line}" for line in r.decisions))
                results.append(r)
        finally:
            if journal is not None:
                journal.close()
            store.close()
    summary = ReplaySummary(results)
    med, p95 = summary.timing()
    n = len(results)
    say(f"read rate: {summary.read} of {n} frames held a code read"
        f" ({100.0 * summary.read / n:.1f}%); decode {med:.1f} ms median, {p95:.1f} ms p95")
    return summary


def _offline_store(cfg: Config, tmp: Path) -> CredentialStore:
    """A copy of the synced cache (if any) with the allowlist loaded: never the live files."""
    db = tmp / "credentials.db"
    if cfg.credentials_path.is_file():
        shutil.copyfile(cfg.credentials_path, db)
    store = CredentialStore(db)
    load_allowlist_into(store, cfg.list.path)  # AllowlistError names the file and line
    return store
