"""The gate stays free of the server: no import of gate_server from gate/, no server
dependency in the base install; and the server's systemd unit passes systemd-analyze."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SERVER_ONLY = ("fastapi", "uvicorn", "sqlalchemy", "alembic", "psycopg", "argon2", "jinja2")


def test_gs_gate_package_never_imports_gate_server() -> None:
    pattern = re.compile(r"^\s*(from|import)\s+gate_server\b", re.M)
    offenders = [str(p) for p in (REPO / "gate").rglob("*.py") if pattern.search(p.read_text())]
    assert offenders == []
    # and at run time: importing every gate module pulls in nothing of the server
    code = ("import importlib, pkgutil, sys, gate\n"
            "for m in pkgutil.walk_packages(gate.__path__, 'gate.'):\n"
            "    if not m.name.endswith('__main__'): importlib.import_module(m.name)\n"
            f"bad = sorted(n for n in sys.modules if n.split('.')[0] in {SERVER_ONLY + ('gate_server',)!r})\n"
            "print(bad)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_gs_base_install_has_no_server_dependency() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    base = " ".join(project["dependencies"]).lower()
    assert not [name for name in SERVER_ONLY if name in base]
    server = " ".join(project["optional-dependencies"]["server"]).lower()
    assert all(name in server for name in SERVER_ONLY)
    assert project["scripts"]["gate-server"] == "gate_server.cli:main"


SYSTEMD_ANALYZE = shutil.which("systemd-analyze")


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze not installed")
def test_gs_server_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    unit = (REPO / "systemd" / "gate-server.service").read_text()
    exe = tmp_path / "gate-server"
    exe.write_text("#!/bin/sh\nexit 0\n")
    exe.chmod(0o755)
    copy = tmp_path / "gate-server.service"
    copy.write_text(unit.replace("/opt/gate-server/venv/bin/gate-server", str(exe)))
    proc = subprocess.run([str(SYSTEMD_ANALYZE), "verify", "--man=no", str(copy)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == "", proc.stderr
    for hardening in ("NoNewPrivileges=yes", "ProtectSystem=strict", "CapabilityBoundingSet=",
                      "StateDirectory=gate-server", "User=gate-server"):
        assert hardening in unit
