"""CLI commands not covered elsewhere: relay-off (systemd's ExecStopPost) and sync."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.daemon import REPO, gate_config, write_allowlist
from tests.support.qrimages import write_frames


def gate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gate", *args], capture_output=True, text=True,
                          cwd=REPO, timeout=60)


def config(tmp_path: Path, **overrides: dict) -> Path:
    write_frames(tmp_path / "frames", [None])
    return gate_config(tmp_path, tmp_path / "frames",
                       write_allowlist(tmp_path / "allow.csv", []), **overrides)


def test_cli_relay_off_claims_and_locks_the_relay(tmp_path: Path) -> None:
    result = gate("relay-off", "--config", str(config(tmp_path)))
    assert result.returncode == 0, result.stderr
    assert "pin 17: locked" in result.stdout


BROKEN_ELSEWHERE = {
    "unknown keys and a bad value elsewhere": (
        '[gpio]\npin_factory = "mock"\n[door]\nrelay_pin = 22\nrelay_active_high = false\n'
        'open_s = -5\nsparkle = true\n[nonsense]\nx = 1\n'),
    "a TOML syntax error elsewhere": (
        '[gate]\nid = "door\n[gpio]\npin_factory = "mock"  # comment\n[door]\n'
        'relay_pin = 22\nrelay_active_high = false\n[camera]\nfps = = 3\n'),
}


@pytest.mark.parametrize("text", BROKEN_ELSEWHERE.values(), ids=BROKEN_ELSEWHERE.keys())
def test_cli_relay_off_locks_with_a_config_broken_elsewhere(tmp_path: Path, text: str) -> None:
    path = tmp_path / "gate.toml"
    path.write_text(text)
    assert gate("check-config", "--config", str(path)).returncode == 2
    result = gate("relay-off", "--config", str(path))
    assert result.returncode == 0, result.stderr
    assert "relay on pin 22: locked (active-low)" in result.stdout


def test_cli_relay_off_falls_back_to_defaults_for_unreadable_wiring_and_says_so(
        tmp_path: Path) -> None:
    path = tmp_path / "gate.toml"
    path.write_text('[gpio]\npin_factory = "mock"\n[door]\nrelay_pin = 99\n'
                    'relay_active_high = "no"\n')
    result = gate("relay-off", "--config", str(path))
    assert result.returncode == 0, result.stderr
    assert "relay on pin 17: locked (active-high)" in result.stdout
    assert "[door] relay_pin: must be <= 53" in result.stderr
    assert "[door] relay_active_high" in result.stderr and "default" in result.stderr


def test_cli_relay_off_with_no_readable_config_uses_the_defaults(tmp_path: Path) -> None:
    result = gate("relay-off", "--config", str(tmp_path / "missing.toml"))
    assert "cannot read" in result.stderr  # default factory: no GPIO on a PC, exit 1
    assert result.returncode in (0, 1)


def test_cli_systemd_unit_locks_the_relay_after_every_stop() -> None:
    unit = (REPO / "systemd" / "gate.service").read_text()
    assert "ExecStopPost=-/opt/gate/venv/bin/gate relay-off --config /etc/gate/gate.toml" in unit


def test_cli_sync_without_a_server_section_says_so(tmp_path: Path) -> None:
    result = gate("sync", "--config", str(config(tmp_path)))
    assert result.returncode == 2
    assert "no [server] section" in result.stderr


def test_cli_sync_reports_an_unreachable_server_and_keeps_the_cache(tmp_path: Path) -> None:
    from tests.support.badserver import free_port_url
    (tmp_path / "token").write_text("t0k3n\n")
    cfg = config(tmp_path, server={"url": free_port_url(), "token_file": str(tmp_path / "token")})
    result = gate("sync", "--config", str(cfg))
    assert result.returncode == 1
    assert "server unavailable" in result.stderr and "cache is unchanged" in result.stderr
    assert "t0k3n" not in result.stdout + result.stderr


def test_cli_example_config_and_allowlist_are_valid(tmp_path: Path) -> None:
    """What install.sh puts in /etc/gate must pass check-config as shipped (the allowlist
    path pointed at the example list, which install.sh copies to /etc/gate/allowlist.csv)."""
    text = (REPO / "config" / "gate.example.toml").read_text()
    shipped = 'path = "/etc/gate/allowlist.csv"'
    assert shipped in text
    path = tmp_path / "gate.toml"
    path.write_text(text.replace(
        shipped, f'path = "{REPO / "config" / "allowlist.example.csv"}"'))
    result = gate("check-config", "--config", str(path))
    assert result.returncode == 0, result.stderr
    assert "(allowlist: 1 credentials, 0 bad rows skipped)" in result.stdout
    assert 'source = "picamera2"' in result.stdout
    from gate.verify.credentials import read_allowlist
    loaded = read_allowlist(REPO / "config" / "allowlist.example.csv")
    assert len(loaded.credentials) == 1 and loaded.problems == []


def test_cli_journal_prints_json_lines_and_filters(tmp_path: Path) -> None:
    import json

    from gate.journal import Journal
    cfg = config(tmp_path)
    journal = Journal(tmp_path / "state" / "journal.db", "test-gate")
    journal.record("system", event="started")
    journal._db.execute("UPDATE events SET at = '2020-01-01T00:00:00.000Z'")
    journal.record("decision", verdict="deny", reason="unknown", source="none", label="",
                   credential_id=None, code_sha256="ab" * 32, latency_ms=1.5)
    journal.close()
    everything = gate("journal", "--config", str(cfg), "--json")
    assert everything.returncode == 0, everything.stderr
    lines = [json.loads(line) for line in everything.stdout.splitlines()]
    assert [e["kind"] for e in lines] == ["system", "decision"]
    recent = gate("journal", "--config", str(cfg), "--json", "--since", "2024-01-01")
    assert [json.loads(line)["kind"] for line in recent.stdout.splitlines()] == ["decision"]
    human = gate("journal", "--config", str(cfg), "--kind", "decision")
    assert "DENY  unknown" in human.stdout and "abababababab…" in human.stdout
    bad = gate("journal", "--config", str(cfg), "--since", "last tuesday")
    assert bad.returncode == 2 and "--since" in bad.stderr


def test_cli_check_config_refuses_a_client_key_without_its_certificate(tmp_path: Path) -> None:
    cfg = config(tmp_path, server={"url": "https://access.example.org",
                                   "client_key": str(tmp_path / "door.key")})
    result = gate("check-config", "--config", str(cfg))
    assert result.returncode == 2
    assert "[server] client_key" in result.stderr


# Printed by the code before issue 9 (commit 499f7c0) for the events below.
GOLDEN_JOURNAL_JSON = (
    '{"id": "e1", "at": "2020-01-01T00:00:00.000Z", "gate": "test-gate", "kind": "system", '
    '"event": "started", "camera": "files"}\n'
    '{"id": "e2", "at": "2020-01-01T00:00:00.000Z", "gate": "test-gate", "kind": "decision", '
    '"verdict": "grant", "reason": "ok", "source": "list", "label": "Alice", '
    '"credential_id": "c-1", "code_sha256": "' + "ab" * 32 + '", "latency_ms": 12.25}\n'
    '{"id": "e3", "at": "2020-01-01T00:00:00.000Z", "gate": "test-gate", "kind": "door", '
    '"state": "unlocked"}\n')


def test_cli_journal_json_output_is_golden_and_logs_stay_on_stderr(tmp_path: Path) -> None:
    """`gate journal --json` prints exactly these lines (a contract: scripts parse it)."""
    from gate.journal import Journal
    cfg = config(tmp_path)
    journal = Journal(tmp_path / "state" / "journal.db", "test-gate")
    journal.record("system", event="started", camera="files")
    journal.record("decision", verdict="grant", reason="ok", source="list", label="Alice",
                   credential_id="c-1", code_sha256="ab" * 32, latency_ms=12.25)
    journal.record("door", state="unlocked")
    journal._db.execute("UPDATE events SET body = json_set(body, '$.id', 'e' || seq, "
                        "'$.at', '2020-01-01T00:00:00.000Z')")
    journal.close()
    out = gate("journal", "--config", str(cfg), "--json")
    assert out.returncode == 0, out.stderr
    assert out.stdout == GOLDEN_JOURNAL_JSON, out.stdout


def test_cli_a_pin_factory_that_cannot_load_is_a_config_error(tmp_path: Path) -> None:
    cfg = config(tmp_path, gpio={"pin_factory": "rpigpio"})  # RPi.GPIO: not on a PC
    for command in ("run", "check-config", "test-relay"):
        out = gate(command, "--config", str(cfg))
        assert out.returncode == 2, (command, out.stdout, out.stderr)
        assert "[gpio] pin_factory = 'rpigpio' cannot be loaded" in out.stdout + out.stderr


def test_cli_check_config_runs_the_preflight_of_run(tmp_path: Path) -> None:
    """check-config refuses what `run` would refuse before it claims a pin: a missing
    allowlist, a token file others may write; each exit 2 naming the file, from both."""
    cfg = config(tmp_path)
    (tmp_path / "allow.csv").unlink()
    for command in ("check-config", "run"):
        out = gate(command, "--config", str(cfg))
        assert out.returncode == 2 and "allowlist file not found" in out.stderr, (command, out)
    token = tmp_path / "token"
    token.write_text("t0k3n\n")
    token.chmod(0o666)
    cfg = config(tmp_path, server={"url": "https://access.example.org",
                                   "token_file": str(token)})
    for command in ("check-config", "run"):
        out = gate(command, "--config", str(cfg))
        assert out.returncode == 2, (command, out)
        assert "writable by group and others" in out.stderr and "t0k3n" not in out.stderr


def test_cli_logs_go_to_stderr_and_stdout_stays_the_output(tmp_path: Path) -> None:
    """A warning logged during check-config (a token file everyone may read) is on stderr;
    stdout holds only the command's output."""
    token = tmp_path / "token"
    token.write_text("t0k3n\n")
    token.chmod(0o644)
    cfg = config(tmp_path, server={"url": "https://access.example.org",
                                   "token_file": str(token)})
    out = gate("check-config", "--config", str(cfg))
    assert out.returncode == 0, out.stderr
    assert "readable by everyone" in out.stderr and "readable by everyone" not in out.stdout
    assert out.stdout.startswith(f"# {cfg}: OK")
