"""A real Mosquitto broker for the tests: Debian's /usr/sbin/mosquitto on a free loopback port,
with users made by mosquitto_passwd and the ACL shipped in config/mosquitto/."""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from tests.support.daemon import REPO

MOSQUITTO = "/usr/sbin/mosquitto"
ACL = REPO / "config" / "mosquitto" / "gate.acl"
USERS = {"homeassistant": "ha-secret", "gate-a": "a-secret", "gate-b": "b-secret"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Broker:
    def __init__(self, directory: Path, tls: tuple[Path, Path, Path] | None = None) -> None:
        self.dir = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        passwd = directory / "passwd"
        passwd.touch()
        for user, password in USERS.items():
            subprocess.run(["mosquitto_passwd", "-b", str(passwd), user, password], check=True,
                           capture_output=True)
        lines = ["per_listener_settings false", "allow_anonymous false",
                 f"password_file {passwd}", f"acl_file {ACL}", "log_dest stderr",
                 "log_type error", "log_type warning",
                 # As root, mosquitto would drop to user "mosquitto", who cannot read tmp
                 f"user {pwd.getpwuid(os.getuid()).pw_name}",
                 f"listener {self.port} 127.0.0.1"]
        if tls is not None:
            ca, cert, key = tls
            lines += [f"cafile {ca}", f"certfile {cert}", f"keyfile {key}"]
        self.conf = directory / "mosquitto.conf"
        self.conf.write_text("\n".join(lines) + "\n")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(
                    ("127.0.0.1", self.port), timeout=0.2):
                return
            time.sleep(0.05)
        raise AssertionError("mosquitto did not start")

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


class Watcher:
    """An MQTT client that records every message it receives (topic -> list of payloads)."""

    def __init__(self, port: int, user: str = "homeassistant",
                 subscribe: tuple[str, ...] = ("gate/#", "homeassistant/#")) -> None:
        self.messages: dict[str, list[mqtt.MQTTMessage]] = {}
        self._cond = threading.Condition()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.username_pw_set(user, USERS[user])
        self.client.on_message = self._on_message
        self.subscribe_codes: list[Any] = []
        self.client.on_subscribe = lambda c, u, mid, codes, props: self.subscribe_codes.extend(
            codes)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        for topic in subscribe:
            self.client.subscribe(topic, qos=1)

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self._cond:
            self.messages.setdefault(msg.topic, []).append(msg)
            self._cond.notify_all()

    def wait(self, topic: str, predicate: Any = lambda m: True, timeout: float = 15.0
             ) -> mqtt.MQTTMessage:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for m in self.messages.get(topic, []):
                    if predicate(m):
                        return m
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no matching message on {topic}; have "
                                         f"{sorted(self.messages)}")
                self._cond.wait(left)

    def payloads(self, topic: str) -> list[str]:
        with self._cond:
            return [m.payload.decode() for m in self.messages.get(topic, [])]

    def command(self, gate: str, body: dict[str, Any] | bytes, retain: bool = False) -> Any:
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        info = self.client.publish(f"gate/{gate}/command", payload, qos=1, retain=retain)
        info.wait_for_publish(timeout=5)
        return info

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def fresh(cmd: str, **extra: Any) -> dict[str, Any]:
    """A valid command now, with a new id."""
    return {"v": 1, "id": f"t{time.monotonic_ns()}", "ts": time.time(), "cmd": cmd, **extra}


@contextlib.contextmanager
def running_broker(directory: Path, tls: tuple[Path, Path, Path] | None = None
                   ) -> Iterator[Broker]:
    broker = Broker(directory, tls)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
