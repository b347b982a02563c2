"""`gate-server` CLI on SQLite and PostgreSQL: enrolment, passes, errors (exit 2 naming the
field), and `serve` as a real process."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import create_engine, text

from gate_server.cli import main

from .pg import free_port


def run(capsys: Any, db: str, secret: Path, *args: str) -> tuple[int, Any, str]:
    rc = main(["--db", db, "--secret-file", str(secret), *args])
    out, err = capsys.readouterr()
    return rc, (json.loads(out) if rc == 0 and out.strip() else out), err


def dump(db: str) -> str:
    """Every row of every table as text: what a database leak would give away."""
    engine = create_engine(db)
    try:
        with engine.connect() as conn:
            return "\n".join(str(row) for table in ("passes", "gates", "admins",
                                                     "server_settings", "sites")
                             for row in conn.execute(text(f"SELECT * FROM {table}")))
    finally:
        engine.dispose()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_gs_cli_enrol_issue_show_revoke(db_url: str, tmp_path: Path, capsys: Any) -> None:
    import zxingcpp
    from PIL import Image
    secret = tmp_path / "secret"
    assert run(capsys, db_url, secret, "init")[0] == 0
    assert run(capsys, db_url, secret, "init")[0] == 0  # idempotent
    assert mode(secret) == 0o600
    assert run(capsys, db_url, secret, "site", "add", "hq", "--timezone", "Europe/Oslo")[0] == 0
    token_file = tmp_path / "gate-1.token"
    assert run(capsys, db_url, secret, "gate", "add", "gate-1", "--site", "hq",
               "--direction", "in", "--token-file", str(token_file))[0] == 0
    token = token_file.read_text().strip()
    assert mode(token_file) == 0o600 and len(token) >= 43

    qr, png = tmp_path / "pass.txt", tmp_path / "pass.png"
    rc, issued, _ = run(capsys, db_url, secret, "pass", "issue", "--plain", "--site", "hq",
                        "--holder", "Ann Example", "--until", "2099-01-01T00:00:00Z",
                        "--qr-text", str(qr), "--png", str(png))
    assert rc == 0 and issued["page_url"].startswith("/p/") and issued["state"] == "valid"
    code = qr.read_text()
    assert mode(qr) == 0o600 and 26 <= len(code) <= 40  # >= 128 bits, small QR
    decoded = zxingcpp.read_barcodes(Image.open(png))
    assert [d.text for d in decoded] == [code]

    leaked = dump(db_url)
    for secret_text in (code, token, issued["page_url"][3:]):
        assert secret_text not in leaked

    shown = tmp_path / "shown.txt"
    rc, info, _ = run(capsys, db_url, secret, "pass", "show", issued["id"], "--at",
                      "2100-01-01T00:00:00Z", "--qr-text", str(shown))
    assert rc == 0 and shown.read_text() == code and info["state"] == "expired"
    assert run(capsys, db_url, secret, "pass", "revoke", issued["id"])[0] == 0
    rc, info, _ = run(capsys, db_url, secret, "pass", "show", issued["id"], "--qr-text", str(shown))
    assert info["state"] == "revoked"


def test_gs_cli_input_errors_exit_2_naming_the_field(db_url: str, tmp_path: Path,
                                                     capsys: Any) -> None:
    secret = tmp_path / "secret"
    run(capsys, db_url, secret, "init")
    run(capsys, db_url, secret, "site", "add", "hq")
    cases = [
        (("pass", "issue", "--site", "nowhere", "--holder", "A"), "--site"),
        (("pass", "issue", "--site", "hq", "--holder", "A", "--until", "2030-01-01"), "--until"),
        (("pass", "issue", "--site", "hq", "--holder", "A", "--rotating", "--plain"),
         "--rotating"),
        (("pass", "issue", "--site", "hq", "--holder", "A", "--until", "2001-01-01T00:00:00Z"),
         "--until"),
        (("pass", "revoke", "p0000"), "ID"),
        (("site", "add", "hq"), "NAME"),
        (("site", "add", "x", "--timezone", "Mars/Base"), "--timezone"),
        (("gate", "add", "bad id!", "--site", "hq", "--token-file", str(tmp_path / "t")), "ID"),
        (("keys", "export", "--out", str(tmp_path / "no" / "k")), "--out"),
        (("admin", "add", "root", "--password-file", str(tmp_path / "missing")),
         "--password-file"),
        (("serve", "--listen", "0.0.0.0:8443"), "--listen"),
        (("serve", "--listen", "127.0.0.1:8443", "--tls-cert", "c.pem"), "--tls-cert"),
    ]
    for args, field in cases:
        rc, out, err = run(capsys, db_url, secret, *args)
        assert rc == 2 and field in err, (args, err)
    assert not (tmp_path / "t").exists()
    rc, _, err = run(capsys, "mysql://x/y", secret, "init")
    assert rc == 2 and "--db" in err


def test_gs_cli_refuses_a_secret_of_another_database(db_url: str, tmp_path: Path,
                                                      capsys: Any) -> None:
    run(capsys, db_url, tmp_path / "secret", "init")
    rc, _, err = run(capsys, db_url, tmp_path / "other", "init")
    assert rc == 2 and "secret" in err


def test_gs_cli_admin_password_is_stored_as_argon2(db_url: str, tmp_path: Path,
                                                    capsys: Any) -> None:
    secret = tmp_path / "secret"
    run(capsys, db_url, secret, "init")
    pw = tmp_path / "pw"
    pw.write_text("correct horse battery staple\n")
    assert run(capsys, db_url, secret, "admin", "add", "alice", "--password-file", str(pw))[0] == 0
    leaked = dump(db_url)
    assert "$argon2id$" in leaked and "correct horse" not in leaked
    pw.write_text("short")
    rc, _, err = run(capsys, db_url, secret, "admin", "add", "bob", "--password-file", str(pw))
    assert rc == 2 and "--password-file" in err


@pytest.mark.slow
def test_gs_cli_serve_answers_on_loopback_and_stops_on_sigterm(db_url: str, tmp_path: Path,
                                                               capsys: Any) -> None:
    secret = tmp_path / "secret"
    run(capsys, db_url, secret, "init")
    port = free_port()
    env = {**os.environ, "GATE_SERVER_DB": db_url, "GATE_SERVER_SECRET_FILE": str(secret)}
    proc = subprocess.Popen([sys.executable, "-m", "gate_server", "serve", "--listen",
                             f"127.0.0.1:{port}"], env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                r = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except requests.ConnectionError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "serve did not come up"
                time.sleep(0.05)
        assert r.json() == {"ok": True} and "server" not in r.headers
        r = requests.post(f"http://127.0.0.1:{port}/v1/verify", json={}, timeout=2)
        assert r.status_code == 401
    finally:
        proc.send_signal(signal.SIGTERM)
        # uvicorn re-raises SIGTERM after a clean shutdown; systemd counts that as success.
        assert proc.wait(10) in (0, -signal.SIGTERM)


def test_gs_cli_serve_refuses_an_uninitialised_database(tmp_path: Path, capsys: Any) -> None:
    db = f"sqlite:///{tmp_path / 'empty.db'}"
    rc, _, err = run(capsys, db, tmp_path / "secret", "pass", "revoke", "p1")
    assert rc == 2 and "gate-server init" in err
