"""The decision path's smaller rules: a server's open_s is capped by [door] max_open_s (and
junk falls back to open_s), the config's own open_s is bounded by it, and a gate with a
[server] starts without an error and writes its `starting` status."""

from __future__ import annotations

import json
import logging
import socket
import threading
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory

from gate.config import ConfigError, load_config
from gate.daemon import Gate
from tests.support.gatehelpers import setup_config


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when this returns


def build(config: Path) -> Gate:
    return Gate(load_config(config), threading.Event(), pin_factory=MockFactory())


@pytest.mark.parametrize("asked, expected", [
    (None, 2.0), (5.0, 5.0), (3600.0, 12.0), (1e308, 12.0), (float("inf"), 2.0),
    (float("nan"), 2.0), (-1.0, 2.0), (0.0, 2.0)])
def test_decide_open_s_is_capped_by_max_open_s(tmp_path: Path, asked: float | None,
                                               expected: float) -> None:
    gate = build(setup_config(tmp_path, door={"open_s": 2.0, "max_open_s": 12.0}))
    try:
        assert gate._open_s(asked) == expected
    finally:
        gate.close()


def test_decide_config_open_s_above_max_open_s_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\[door\] open_s: must be <= \[door\] max_open_s"):
        load_config(setup_config(tmp_path, door={"open_s": 31.0}))  # default max 30


def test_decide_gate_with_a_server_starts_cleanly_and_writes_starting(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    token = tmp_path / "token"
    token.write_text("t0ken\n")
    config = setup_config(tmp_path, server={"url": f"http://127.0.0.1:{closed_port()}",
                                            "token_file": str(token), "timeout_s": 0.2})
    caplog.set_level(logging.INFO)
    gate = build(config)
    try:
        status = json.loads((tmp_path / "state" / "status.json").read_text())
        assert status["state"] == "starting"
        assert "building the snapshot failed" not in caplog.text
        assert "Traceback" not in caplog.text and "AttributeError" not in caplog.text
    finally:
        gate.close()
