"""The fleet bus against a real Mosquitto: discovery as Home Assistant reads it, remote
commands through the shipped ACL, hostile commands, a broker kill -9, metrics over HTTP."""

from __future__ import annotations

import json
import shutil
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.badserver import make_ca, make_server_cert
from tests.support.broker import USERS, Watcher, free_port, fresh, running_broker
from tests.support.gatehelpers import events_where, setup_config, wait_event, wait_until
from tests.support.hass import check_ha_config

pytestmark = [pytest.mark.skipif(shutil.which("mosquitto_passwd") is None,
                                 reason="needs Debian's mosquitto"),
              pytest.mark.slow]  # a real mosquitto broker and gate run subprocesses

ALICE = "GATE-TEST-ALICE-1"

def gate_cfg(tmp_path: Path, port: int, sequence: list[Any] | None = None,
             **extra: dict[str, Any]) -> Path:
    pw = tmp_path / "mqtt.pw"
    pw.write_text(USERS["gate-a"] + "\n")
    return setup_config(tmp_path, sequence, gate={"id": "gate-a"},
                        mqtt={"url": f"mqtt://127.0.0.1:{port}", "username": "gate-a",
                              "password_file": str(pw), "command_max_age_s": 5},
                        **extra)


def scrape(port: int) -> dict[str, list[Any]]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
    return {f.name: f.samples for f in text_string_to_metric_families(text.decode())}


def test_fleet_discovery_matches_ha_schemas_and_unlock_pulses(tmp_path: Path,
                                                               gate_process: Any) -> None:
    with running_broker(tmp_path / "broker") as broker:
        watcher = Watcher(broker.port)
        metrics_port = free_port()
        gp = gate_process(gate_cfg(tmp_path, broker.port,
                                   metrics={"listen": f"127.0.0.1:{metrics_port}"}))
        watcher.wait("gate/gate-a/availability", lambda m: m.payload == b"online")
        # Discovery: every config retained (a client that comes later, as Home Assistant
        # after a restart, gets them from the broker), each one valid for Home Assistant.
        found: dict[str, dict[str, Any]] = {}
        for component in ("lock", "binary_sensor", "event", "sensor"):
            wait_until(lambda component=component: any(t.startswith(f"homeassistant/{component}/")
                                   for t in watcher.messages), 10, component)
        late = Watcher(broker.port, subscribe=("homeassistant/#",))
        wait_until(lambda: len(late.messages) == sum(
            t.startswith("homeassistant/") for t in watcher.messages), 10, "retained configs")
        for topic, msgs in list(late.messages.items()):
            if topic.startswith("homeassistant/"):
                _, component, node, key, last = topic.split("/")
                assert node == "gate_gate-a" and last == "config"
                assert msgs[-1].retain
                cfg = json.loads(msgs[-1].payload)
                check_ha_config(component, cfg)
                found[key] = cfg
        assert {"lock", "door", "access", "latency", "lockdown"} <= set(found)
        assert "cache_age" not in found  # no [server]: nothing to show, nothing faked
        assert found["lock"]["command_topic"] == "gate/gate-a/command"
        late.close()
        # Unlock: one pulse of the relay, journaled as a remote decision.
        watcher.command("gate-a", fresh("unlock"))
        state = tmp_path / "state"
        decision = wait_event(state, kind="decision", source="remote")
        assert decision["verdict"] == "grant" and decision["code_sha256"] is None
        wait_event(state, kind="door", state="unlocked")
        wait_event(state, kind="door", state="locked")
        watcher.wait("gate/gate-a/lock", lambda m: m.payload == b"UNLOCKED")
        event = json.loads(watcher.wait("gate/gate-a/event").payload)
        assert event["event_type"] == "grant" and event["source"] == "remote"
        assert "code" not in json.dumps(event)  # neither a code nor its hash
        # Hostile commands: each refused and counted, none opens, the daemon keeps going.
        replay = fresh("unlock")
        watcher.command("gate-a", replay)
        junk: list[dict[str, Any] | bytes] = [
            replay,                                               # replay
            {**fresh("unlock"), "ts": time.time() - 60},          # stale
            {**fresh("unlock"), "ts": time.time() + 60},          # from the future
            b"\xff\xfe not utf-8", b"[" * 400, b"x" * 5000,       # junk, nested, huge
            {**fresh("unlock"), "v": "1"}, {**fresh("unlock"), "extra": {"a": 1}},
            {**fresh("unlock"), "id": ["x"]}, {**fresh("lockdown"), "state": True},
            b'{"v":1,"id":"n","ts":NaN,"cmd":"unlock"}', b"null"]
        for body in junk:
            watcher.command("gate-a", body)
        watcher.command("gate-a", fresh("unlock"), retain=True)   # retained
        samples = wait_until(lambda: (lambda s: s if sum(
            x.value for x in s["gate_mqtt_messages"] if x.labels["kind"] == "command"
            and x.labels["result"] != "ok") >= len(junk) + 1 else None)(scrape(metrics_port)),
            10, "refusals counted")
        refused = {x.labels["result"]: x.value for x in samples["gate_mqtt_messages"]
                   if x.name.endswith("_total") and x.labels["kind"] == "command"}
        assert refused["ok"] == 2 and refused["replay"] == 1 and refused["retained"] == 1
        assert refused["stale"] == 1 and refused["future"] == 1
        assert refused["not_utf8"] == 1 and refused["too_big"] == 1
        assert len(events_where(state, kind="decision", source="remote")) == 2
        assert [x.value for x in samples["gate_mqtt_connected"]] == [1.0]
        assert gp.proc.poll() is None
        watcher.close()


def test_fleet_acl_refuses_another_gates_user(tmp_path: Path, gate_process: Any) -> None:
    with running_broker(tmp_path / "broker") as broker:
        watcher = Watcher(broker.port)
        gate_process(gate_cfg(tmp_path, broker.port))
        watcher.wait("gate/gate-a/availability", lambda m: m.payload == b"online")
        other = Watcher(broker.port, user="gate-b", subscribe=("gate/gate-a/command",))
        wait_until(lambda: other.subscribe_codes, 5, "suback")
        info = other.command("gate-a", fresh("unlock"))
        assert info.rc == 0  # published, and dropped by the broker (ACL): nothing happens
        time.sleep(0.5)  # give a wrongly delivered unlock the time to show up
        assert events_where(tmp_path / "state", kind="decision", source="remote") == []
        watcher.command("gate-a", fresh("unlock"))  # Home Assistant's does arrive
        wait_event(tmp_path / "state", kind="decision", source="remote")
        # ... and gate-b, though subscribed, never reads gate-a's commands.
        assert other.messages == {}
        other.close()
        watcher.close()


def test_fleet_survives_broker_kill9_and_lockdown_persists(tmp_path: Path,
                                                          gate_process: Any) -> None:
    sequence: list[Any] = [None] * 4 + [ALICE] * 2 + [None] * 6
    config = gate_cfg(tmp_path, 0, sequence)
    state = tmp_path / "state"
    with running_broker(tmp_path / "broker") as broker:
        config = gate_cfg(tmp_path, broker.port, sequence)
        watcher = Watcher(broker.port)
        gp = gate_process(config)
        watcher.wait("gate/gate-a/availability", lambda m: m.payload == b"online")
        broker.kill9()
        watcher.close()
        killed_at = len(events_where(state, kind="decision"))
        # Decisions keep coming while the broker is gone.
        wait_until(lambda: len(events_where(state, kind="decision")) >= killed_at + 2, 20,
                   "decisions without a broker")
        broker.start()
        watcher = Watcher(broker.port)
        watcher.wait("gate/gate-a/availability", lambda m: m.payload == b"online", 30)
        watcher.command("gate-a", fresh("lockdown", state="on"))
        wait_event(state, kind="system", event="lockdown", state="on")
        wait_event(state, kind="decision", reason="lockdown", source="list")
        watcher.wait("gate/gate-a/state", lambda m: json.loads(m.payload)["lockdown"])
        gp.signal(15)
        assert gp.wait() == 0
        # A restart does not lift the lockdown; only "lockdown off" does.
        n = len(events_where(state, kind="decision", reason="lockdown"))
        gp = gate_process(config)
        wait_until(lambda: len(events_where(state, kind="decision", reason="lockdown")) > n,
                   20, "lockdown after restart")
        watcher.command("gate-a", fresh("lockdown", state="off"))
        wait_event(state, kind="system", event="lockdown", state="off")
        n = len(events_where(state, kind="decision", reason="ok", source="list"))
        wait_until(lambda: len(events_where(state, kind="decision", reason="ok",
                                            source="list")) > n, 20, "grants again")
        gp.signal(15)
        assert gp.wait() == 0
        watcher.wait("gate/gate-a/availability", lambda m: m.payload == b"offline")
        watcher.close()


def test_fleet_connects_over_tls_with_the_ca_file(tmp_path: Path, gate_process: Any) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("needs openssl")
    certs = tmp_path / "certs"
    certs.mkdir()
    ca = make_ca(certs, "ca")
    cert, key = make_server_cert(certs, ca)
    with running_broker(tmp_path / "broker", tls=(ca[0], cert, key)) as broker:
        pw = tmp_path / "mqtt.pw"
        pw.write_text(USERS["gate-a"] + "\n")
        config = setup_config(tmp_path, None, gate={"id": "gate-a"},
                              mqtt={"url": f"mqtts://127.0.0.1:{broker.port}",
                                    "username": "gate-a", "password_file": str(pw),
                                    "ca_file": str(ca[0])})
        gp = gate_process(config)
        gp.wait_for(r"mqtt: connected to 127\.0\.0\.1", 20)
        gp.signal(15)
        assert gp.wait() == 0
