"""Helpers for tests that run the gate: config and allowlist files, `gate run` as a
subprocess (to completion, or with its output followed line by line), the journal it wrote."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
FAKES = REPO / "tests" / "fakes"


def write_allowlist(path: Path, rows: list[str],
                    header: str = "code,label,valid_from,valid_until") -> Path:
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(str(value))


def write_config(path: Path, sections: dict[str, dict[str, Any]]) -> Path:
    lines = []
    for name, keys in sections.items():
        lines.append(f"[{name}]")
        lines += [f"{k} = {toml_value(v)}" for k, v in keys.items()]
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def gate_config(tmp_path: Path, frames: Path, allowlist: Path, **overrides: dict[str, Any]
                ) -> Path:
    """A config for the files camera and mock pins in tmp_path; `overrides` merge per section."""
    sections: dict[str, dict[str, Any]] = {
        "gate": {"id": "test-gate", "state_dir": str(tmp_path / "state")},
        "camera": {"source": "files", "path": str(frames), "fps": 20, "loop": False},
        "decoder": {"backend": "zxing", "repeat_guard_s": 30.0},
        "gpio": {"pin_factory": "mock"},
        "door": {"relay_pin": 17, "open_s": 0.5},
        "list": {"path": str(allowlist)},
    }
    for name, keys in overrides.items():
        sections.setdefault(name, {}).update(keys)
    return write_config(tmp_path / "gate.toml", sections)


class GateProcess:
    """`gate run` as a subprocess, its output lines collected as they come."""

    def __init__(self, config: Path, env: dict[str, str] | None = None) -> None:
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gate", "run", "--config", str(config)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=full_env,
            cwd=REPO)
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, pattern: str, timeout: float = 20.0) -> str:
        """Block until an output line matches `pattern`; fail with the output so far."""
        rx = re.compile(pattern)
        for line in self.lines:
            if rx.search(line):
                return line
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
            if line is None:
                break
            self.lines.append(line)
            if rx.search(line):
                return line
        raise AssertionError(f"no line matching {pattern!r}; output:\n" + "\n".join(self.lines))

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def wait(self, timeout: float = 30.0) -> int:
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        self._reader.join(timeout=5)
        while True:
            try:
                line = self._queue.get_nowait()
            except queue.Empty:
                break
            if line is not None:
                self.lines.append(line)
        return rc

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)


def run_gate(config: Path, timeout: float = 60.0, env: dict[str, str] | None = None
             ) -> subprocess.CompletedProcess[str]:
    """Run `gate run` to completion (files camera without loop ends by itself)."""
    return subprocess.run([sys.executable, "-m", "gate", "run", "--config", str(config)],
                          capture_output=True, text=True, timeout=timeout, cwd=REPO,
                          env={**os.environ, **(env or {})})


def journal_events(state_dir: Path) -> list[dict[str, Any]]:
    """The journal as the daemon committed it, read straight from its SQLite file."""
    with sqlite3.connect(state_dir / "journal.db") as db:
        return [json.loads(b) for (b,) in db.execute("SELECT body FROM events ORDER BY seq")]
