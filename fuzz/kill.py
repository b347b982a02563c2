"""Kill campaign: the daemon (`gate run`, a subprocess) against gate-server on
127.0.0.1 (also a subprocess), killed with SIGKILL at a random moment while it uploads events or syncs
credentials, then restarted. Checks: every event the journal committed is stored on the
server exactly once (none lost, none duplicated), and the credential cache after the kill is
whole: exactly the old cache or exactly the new one, never a mix.

    python -m fuzz.kill [upload|sync ...] [--trials 30] [--seed 1]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fuzz.common import Result, report, rng_for, timed_result
from fuzz.replies import dump_cache
from fuzz.world import base_sections, scratch_dir, write_toml

CODE = "KILL-FUZZ-ALICE"
GATE_ID = "fuzz-gate"  # fuzz.world.base_sections's [gate] id


class CentralServer:
    """The one adapter to the central server: gate-server on an SQLite file, served by
    `python -m gate_server serve` in a subprocess. It is set up through its own CLI (in
    process); codes of our choosing go in, and events come out, through its database, as
    gate-server's own services write and read it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.db_url = f"sqlite:///{root / 'gs.db'}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    def files(self) -> list[Path]:
        """What a copy of the server's whole state needs: database, pass secret, token."""
        return [self.root / "gs.db", self.root / "gs.db.secret", self.root / "token"]

    def create(self) -> None:
        from gate_server.cli import main as gs_main
        for argv in (["init"], ["site", "add", "hq"],
                     ["gate", "add", GATE_ID, "--site", "hq", "--token-file",
                      str(self.root / "token")]):
            with contextlib.redirect_stdout(io.StringIO()):
                if gs_main(["--db", self.db_url, *argv]) != 0:
                    raise RuntimeError(f"gate-server {' '.join(argv)} failed")

    @contextlib.contextmanager
    def session(self) -> Iterator[Any]:
        from gate_server.db.session import make_engine, make_sessionmaker, transaction
        engine = make_engine(self.db_url)
        try:
            with transaction(make_sessionmaker(engine)) as session:
                yield session
        finally:
            engine.dispose()

    def enrol_many(self, codes: list[str], label: str) -> None:
        from datetime import datetime, timezone

        from gate_server.core.security import load_secret, sha256_hex
        from gate_server.services import passes
        secret = load_secret(self.root / "gs.db.secret")
        now = datetime.now(timezone.utc)
        with self.session() as session:
            for code in codes:
                row = passes.issue(session, secret, passes.IssueSpec("hq", label), now)
                row.code_sha256 = sha256_hex(code.encode())  # a chosen code, not a derived one

    def revoke_many(self, codes: list[str]) -> None:
        from datetime import datetime, timezone

        from sqlalchemy import select

        from gate_server.core.security import sha256_hex
        from gate_server.db.models import Pass
        from gate_server.services import passes
        now = datetime.now(timezone.utc)
        with self.session() as session:
            for code in codes:
                pass_id = session.scalar(select(Pass.id).where(
                    Pass.code_sha256 == sha256_hex(code.encode())))
                passes.revoke(session, str(pass_id), now)

    def event_ids(self) -> list[str]:
        """Every event id held for the gate, as often as it is held."""
        from sqlalchemy import select

        from gate_server.db.models import Event
        with self.session() as session:
            return [str(i) for i in session.scalars(
                select(Event.event_id).where(Event.gate_id == GATE_ID))]

    def start(self) -> str:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gate_server", "--db", self.db_url, "serve", "--listen",
             f"127.0.0.1:{self.port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=child_env())
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and self.proc.poll() is None:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return f"http://127.0.0.1:{self.port}"
            time.sleep(0.05)
        raise RuntimeError("gate-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=20)
            self.proc = None


def child_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "PYTHONUNBUFFERED": "1"}


def gate_config(root: Path, url: str, frames: Path, loop: bool) -> Path:
    allow = root / "allow.csv"
    allow.write_text(f"code,label\n{CODE},Alice\n")
    sections = base_sections(root, allow)
    sections["camera"] = {"source": "files", "path": str(frames), "fps": 20, "loop": loop}
    sections["decoder"] = {"repeat_guard_s": 0.3, "leave_s": 0.1}
    sections["door"] = {"open_s": 0.2}
    sections["server"] = {"url": url, "token_file": str(root / "token"), "timeout_s": 0.3,
                          "sync_interval_s": 1, "upload_interval_s": 0.1, "upload_batch": 3,
                          "upload_max_backoff_s": 1}
    return write_toml(root / f"gate-{'loop' if loop else 'once'}.toml", sections)


def write_frames(folder: Path, codes: list[str | None]) -> Path:
    import numpy as np
    import segno
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i, code in enumerate(codes):
        frame = np.full((240, 320), 200, dtype=np.uint8)
        if code is not None:
            mods = np.pad(np.array(segno.make_qr(code, error="m").matrix, dtype=bool), 4)
            img = np.where(np.kron(mods, np.ones((5, 5), dtype=bool)), 0, 255)
            frame[20:20 + img.shape[0], 20:20 + img.shape[1]] = img
        Image.fromarray(frame).save(folder / f"{i:03d}.png")
    return folder


def start_gate(config: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "gate", "run", "--config", str(config)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=child_env())


def stop_gate(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def journal(root: Path) -> Any:
    from gate.journal import Journal
    return Journal(root / "state" / "journal.db", "fuzz-gate")


def wait(condition: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def upload_trial(rng: Any, root: Path, frames: dict[str, Path], result: Result) -> None:
    server = CentralServer(root)
    server.create()
    url = server.start()
    try:
        gate = start_gate(gate_config(root, url, frames["codes"], loop=True))
        time.sleep(rng.uniform(1.0, 4.0))  # start-up, then grants and uploads in flight
        gate.kill()
        gate.wait()
        gate = start_gate(gate_config(root, url, frames["empty"], loop=True))
        j = journal(root)
        drained = wait(lambda: not j.pending(1), 90)  # generous: a loaded machine
        local = [str(e["id"]) for e in j.events()]
        j.close()
        stop_gate(gate)
        stored = server.event_ids()
    finally:
        server.stop()
    if not drained:
        result.fail("outbox not drained after restart", str(root))
    counts = collections.Counter(stored)
    result.failures["lost events"] += len(set(local) - set(counts))
    result.failures["duplicated events"] += sum(c - 1 for c in counts.values())
    result.info["events committed locally"] += len(local)


def sync_trial(rng: Any, root: Path, frames: dict[str, Path], template: dict[str, Any],
               result: Result) -> None:
    state = root / "state"
    state.mkdir(exist_ok=True)
    shutil.copy(template["cache_a"], state / "credentials.db")
    server = CentralServer(root)
    for path in server.files():
        shutil.copy(template["server_b"] / path.name, path)
    url = server.start()
    try:
        gate = start_gate(gate_config(root, url, frames["empty"], loop=True))
        time.sleep(rng.uniform(0.3, template["sync_s"] * 1.3))
        gate.kill()
        gate.wait()
        after_kill = dump_cache(state / "credentials.db")
        result.info["killed with the old cache"] += after_kill == template["dump_a"]
        result.info["killed with the new cache"] += after_kill == template["dump_b"]
        if after_kill not in (template["dump_a"], template["dump_b"]):
            result.fail("cache mixed or damaged after kill", str(root))
        gate = start_gate(gate_config(root, url, frames["empty"], loop=True))
        if not wait(lambda: dump_cache(state / "credentials.db") == template["dump_b"], 90):
            result.fail("cache not current after restart", str(root))
        stop_gate(gate)
    finally:
        server.stop()


def sync_template(base: Path, frames: dict[str, Path], rows: int) -> dict[str, Any]:
    """Server states A and B, the cache synced to A, and to B from A (uninterrupted)."""
    root = base / "template"
    root.mkdir()
    server = CentralServer(root)
    server.create()
    server.enrol_many([f"OLD-{i}" for i in range(rows)], "A")
    url = server.start()
    gate = start_gate(gate_config(root, url, frames["empty"], loop=True))
    cache = root / "state" / "credentials.db"
    synced = wait(lambda: cache.exists() and len(repr(dump_cache(cache))) > rows * 64, 120)
    stop_gate(gate)
    if not synced:
        raise RuntimeError("the template cache never synced from gate-server")
    server.stop()
    out: dict[str, Any] = {"dump_a": dump_cache(cache), "cache_a": base / "cache_a.db"}
    shutil.copy(cache, out["cache_a"])
    server.revoke_many([f"OLD-{i}" for i in range(0, rows, 2)])
    server.enrol_many([f"NEW-{i}" for i in range(rows)], "B")
    out["server_b"] = base / "server_b"
    out["server_b"].mkdir()
    for path in server.files():
        shutil.copy(path, out["server_b"] / path.name)
    url = server.start()
    t0 = time.monotonic()
    gate = start_gate(gate_config(root, url, frames["empty"], loop=True))
    before = out["dump_a"]
    if not wait(lambda: dump_cache(cache) != before, 120):
        raise RuntimeError("the template cache never synced the second server state")
    out["sync_s"] = time.monotonic() - t0
    time.sleep(0.5)
    stop_gate(gate)
    server.stop()
    out["dump_b"] = dump_cache(cache)
    return out


def run(kinds: list[str], trials: int, seed: int, rows: int) -> Result:
    result = Result("kill -9 during upload and sync")
    with timed_result(result, children=True), scratch_dir() as tmp:
        base = Path(tmp)
        frames = {"codes": write_frames(base / "codes", [CODE] * 2 + [None] * 2),
                  "empty": write_frames(base / "empty", [None] * 2)}
        template = sync_template(base, frames, rows) if "sync" in kinds else {}
        for kind in kinds:
            for i in range(trials):
                rng = rng_for(seed, "kill", kind, i)
                root = base / f"{kind}-{i}"
                root.mkdir()
                if kind == "upload":
                    upload_trial(rng, root, frames, result)
                else:
                    sync_trial(rng, root, frames, template, result)
                result.info[f"{kind} trials"] += 1
                shutil.rmtree(root, ignore_errors=True)
                print(f"  ... {kind} trial {i + 1} of {trials}", file=sys.stderr, flush=True)
        result.cases = trials * len(kinds)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fuzz.kill", description=__doc__)
    parser.add_argument("kinds", nargs="*", metavar="KIND", help="upload and/or sync")
    parser.add_argument("--trials", type=int, default=30, help="kills per kind")
    parser.add_argument("--rows", type=int, default=3000, help="credentials per sync")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="2 trials of each, 300 rows")
    args = parser.parse_args(argv)
    if args.quick:
        args.trials, args.rows = 2, 300
    kinds = args.kinds or ["upload", "sync"]
    if set(kinds) - {"upload", "sync"}:
        parser.error("KIND is upload or sync")
    return report(run(kinds, args.trials, args.seed, args.rows),
                  ["lost events", "duplicated events", "cache mixed or damaged after kill",
                   "cache not current after restart", "outbox not drained after restart"])


if __name__ == "__main__":
    sys.exit(main())
