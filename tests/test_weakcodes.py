"""Allowlist codes too guessable to stay private are warned about (never refused, never
echoed) by the list loader and by `gate check-config`."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from gate.verify.weakcodes import MAX_SHOWN, estimated_bits, weak_code_warnings, weakness
from tests.support.daemon import REPO, gate_config, write_allowlist


@pytest.mark.parametrize("code,why", [
    ("123456", "only digits"), ("123456789012345678", "only digits"),
    ("Ab3-xyz", "7 characters"), ("aaaaaaaaaaaaaaaaaaaaaa", "bits"),
    ("abababababababab", "bits"), ("AB12AB12AB12AB12AB", "bits"),
])
def test_weak_codes_named(code: str, why: str) -> None:
    assert why in (weakness(code) or "")
    assert code not in (weakness(code) or "")


@pytest.mark.parametrize("code", ["1234567890123456789", "GATE-TEST-ALICE-1",
                                  "q8Zr2mK7vXw4", "correct-horse-battery-staple"])
def test_strong_enough_codes_pass(code: str) -> None:
    assert weakness(code) is None, estimated_bits(code)


def test_loader_warns_and_still_loads(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from gate.journal import Journal
    from gate.verify.credentials import LIST, CredentialStore
    from gate.verify.listwatch import ListWatcher
    rows = ["424242,Short,,", "GATE-TEST-ALICE-1,Alice,,"]
    path = write_allowlist(tmp_path / "allow.csv", rows)
    store = CredentialStore(tmp_path / "c.db")
    journal = Journal(tmp_path / "j.db", "g")
    caplog.set_level(logging.WARNING)
    try:
        watcher = ListWatcher(store, path, 1.0, journal, on_fault=lambda on: None)
        assert watcher.load_now() == 2 and store.count(LIST) == 2
    finally:
        store.close()
        journal.close()
    assert f"{path}:2: code is guessable" in caplog.text and "only digits" in caplog.text
    assert "424242" not in caplog.text and ":3:" not in caplog.text


def test_hash_lists_and_unreadable_files_give_no_warning(tmp_path: Path) -> None:
    hashed = tmp_path / "h.csv"
    hashed.write_text("code_sha256,label\n" + "a" * 64 + ",x\n")
    assert weak_code_warnings(hashed) == [] and weak_code_warnings(tmp_path / "no") == []
    many = write_allowlist(tmp_path / "m.csv", [f"{i},n,," for i in range(50)])
    got = weak_code_warnings(many)
    assert len(got) == MAX_SHOWN + 1 and got[-1].endswith(f"{50 - MAX_SHOWN} more guessable codes")


def test_check_config_warns_but_succeeds(tmp_path: Path) -> None:
    allow = write_allowlist(tmp_path / "allow.csv", ["98765,Short,,"])
    cfg = gate_config(tmp_path, tmp_path, allow)
    out = subprocess.run([sys.executable, "-m", "gate", "check-config", "--config", str(cfg)],
                         capture_output=True, text=True, cwd=REPO, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "warning: [list] path:" in out.stderr and "only digits" in out.stderr
    assert "98765" not in out.stderr + out.stdout
    assert "[passes]" in out.stdout and "rotation_window_steps = 1" in out.stdout
