"""systemd notify over a real AF_UNIX datagram socket (path and abstract forms), and the
watchdog interval from WATCHDOG_USEC/WATCHDOG_PID."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from gate.notify import sd_notify, watchdog_interval


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    """What systemd listens on: a datagram socket at a path."""
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(5)
    yield sock, path
    sock.close()


def test_sd_notify_sends_one_datagram_to_a_path_socket(listener: tuple[socket.socket, str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    sock, path = listener
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    assert sd_notify("READY=1", "STATUS=scanning (files camera)") is True
    assert sock.recv(4096) == b"READY=1\nSTATUS=scanning (files camera)"
    assert sd_notify("WATCHDOG=1") is True
    assert sd_notify("STOPPING=1") is True
    assert [sock.recv(4096), sock.recv(4096)] == [b"WATCHDOG=1", b"STOPPING=1"]  # in order


def test_sd_notify_abstract_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"gate-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)  # what systemd's "@name" means
    sock.settimeout(5)
    try:
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert sd_notify("READY=1") is True
        assert sock.recv(4096) == b"READY=1"
    finally:
        sock.close()


def test_sd_notify_without_notify_socket_is_false() -> None:
    assert "NOTIFY_SOCKET" not in os.environ
    assert sd_notify("READY=1") is False


@pytest.mark.parametrize("value", ["", "vsock:2:1234", "relative/notify.sock"])
def test_sd_notify_unusable_address_is_false(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", value)
    assert sd_notify("READY=1") is False


def test_sd_notify_socket_gone_is_false_not_an_error(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "no-one-listens.sock"))
    assert sd_notify("WATCHDOG=1") is False  # the door must not stop over a notify


def test_watchdog_interval_is_half_of_watchdog_usec(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "10000000")  # WatchdogSec=10s
    assert watchdog_interval() == 5.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert watchdog_interval() == 5.0


def test_watchdog_interval_for_another_pid_is_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "10000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))
    assert watchdog_interval() is None


def test_watchdog_interval_without_watchdog_is_none(monkeypatch: pytest.MonkeyPatch) -> None:
    assert watchdog_interval() is None
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert watchdog_interval() is None
