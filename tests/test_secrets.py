"""The bearer token file: refused when group or others may write it (exit 2, naming the file
and the mode), a warning when others may read it, and junk is a config error, not a crash."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from gate.central.client import read_token
from gate.errors import ConfigError
from tests.support.daemon import run_gate
from tests.support.gatehelpers import setup_config

TOKEN = "t0k3n-abc.DEF_123~+/="


def token_file(tmp_path: Path, content: bytes = TOKEN.encode() + b"\n", mode: int = 0o600) -> Path:
    path = tmp_path / "token"
    path.write_bytes(content)
    path.chmod(mode)
    return path


@pytest.mark.parametrize(("mode", "who"), [(0o620, "group"), (0o602, "others"),
                                           (0o666, "group and others"), (0o777, "group and others")])
def test_token_writable_by_group_or_others_is_refused(tmp_path: Path, mode: int, who: str) -> None:
    path = token_file(tmp_path, mode=mode)
    with pytest.raises(ConfigError) as info:
        read_token(path)
    assert str(info.value) == (f"[server] token_file: {path} is writable by {who} "
                               f"(mode {mode:04o}); chmod 0640 {path}")


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o400, 0o440])
def test_token_private_modes_are_read_without_a_warning(tmp_path: Path, mode: int,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert read_token(token_file(tmp_path, mode=mode)) == TOKEN
    assert caplog.records == []


def test_token_readable_by_others_is_a_warning(tmp_path: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    path = token_file(tmp_path, mode=0o644)
    with caplog.at_level(logging.WARNING):
        assert read_token(path) == TOKEN
    (record,) = caplog.records
    assert str(path) in record.getMessage() and "0644" in record.getMessage()
    assert TOKEN not in caplog.text


@pytest.mark.parametrize(("content", "word"), [
    (b"", "is empty"),
    (b"  \n", "is empty"),
    (b"two words\n", "one token on one line"),
    (b"line1\nline2\n", "one token on one line"),
    (b"tok\x00en", "one token on one line"),
    (b"caf\xe9", "not ASCII"),
    (b"x" * 5000, "larger than 4096"),
])
def test_token_junk_is_a_config_error_that_never_echoes_it(tmp_path: Path, content: bytes,
                                                           word: str) -> None:
    path = token_file(tmp_path, content)
    with pytest.raises(ConfigError) as info:
        read_token(path)
    assert word in str(info.value) and str(path) in str(info.value)
    assert "line1" not in str(info.value) and "two words" not in str(info.value)


def test_token_directory_and_missing_file_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read|not a regular file"):
        read_token(tmp_path)
    with pytest.raises(ConfigError, match="cannot read"):
        read_token(tmp_path / "absent")


@pytest.mark.slow
def test_token_group_writable_makes_gate_run_exit_2_naming_file_and_mode(tmp_path: Path) -> None:
    path = token_file(tmp_path, mode=0o664)
    config = setup_config(tmp_path, server={"url": "http://127.0.0.1:9", "token_file": str(path)})
    proc = run_gate(config)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert f"{path} is writable by group (mode 0664)" in out
    assert "Traceback" not in out and TOKEN not in out
