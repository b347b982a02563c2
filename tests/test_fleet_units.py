"""The fleet parts without a broker: command schema, replay guard on injected clocks, the
bounded publish queue, lockdown persistence, metrics from journal events, [mqtt] config, the
occupancy sensors' discovery."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gate.config import ConfigError, load_config
from gate.fleet.bus import BrokerSettings, FleetBus
from gate.fleet.commands import Command, Refused, ReplayGuard, parse_command
from gate.fleet.discovery import (
    OccupancyReading,
    Topics,
    discovery_messages,
    occupancy_reading,
)
from gate.journal import Journal
from gate.metrics import GateMetrics, Readings
from gate.verify.decision import Decision
from gate.verify.lockdown import Lockdown, LockdownChain
from tests.support.daemon import write_config
from tests.support.hass import check_ha_config

GOOD = b'{"v":1,"id":"abc-1","ts":1000.5,"cmd":"unlock"}'


def test_command_parses_the_documented_schema() -> None:
    assert parse_command(GOOD) == Command(id="abc-1", ts=1000.5, cmd="unlock")
    cmd = parse_command(b'{"v":1,"id":"x","ts":5,"cmd":"lockdown","state":"off"}')
    assert cmd.state == "off"


@pytest.mark.parametrize("payload, reason", [
    (b"x" * 513, "too_big"), (b"\xc3\x28", "not_utf8"), (b"{", "not_json"),
    (b"[" * 300, "not_json"), (b'"unlock"', "not_object"), (b"[1]", "not_object"),
    (b'{"v":1,"id":"a","ts":1,"cmd":"unlock","state":"on"}', "unknown_key"),
    (b'{"v":1,"id":"a","ts":1,"cmd":"unlock","x":{}}', "unknown_key"),
    (b'{"v":true,"id":"a","ts":1,"cmd":"unlock"}', "bad_field"),
    (b'{"v":2,"id":"a","ts":1,"cmd":"unlock"}', "bad_field"),
    (b'{"v":1,"id":"a b","ts":1,"cmd":"unlock"}', "bad_field"),
    (b'{"v":1,"id":"","ts":1,"cmd":"unlock"}', "bad_field"),
    (b'{"v":1,"id":"a","ts":"1","cmd":"unlock"}', "bad_field"),
    (b'{"v":1,"id":"a","ts":true,"cmd":"unlock"}', "bad_field"),
    (b'{"v":1,"id":"a","ts":1e999,"cmd":"unlock"}', "bad_field"),
    (b'{"v":1,"id":"a","ts":NaN,"cmd":"unlock"}', "not_json"),
    (b'{"v":1,"id":"a","ts":1,"cmd":"open"}', "bad_field"),
    (b'{"v":1,"id":"a","ts":1,"cmd":"lockdown"}', "bad_field"),
    (b'{"v":1,"id":"a","ts":1,"cmd":"lockdown","state":1}', "bad_field"),
])
def test_command_hostile_payload_is_refused_with_its_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(Refused) as exc:
        parse_command(payload)
    assert exc.value.reason == reason


def test_replay_guard_window_ids_and_retained() -> None:
    wall, mono = [1000.0], [50.0]
    guard = ReplayGuard(10.0, capacity=2, wall=lambda: wall[0], mono=lambda: mono[0])

    def admit(cid: str, ts: float, retained: bool = False) -> str:
        try:
            guard.admit(Command(id=cid, ts=ts, cmd="unlock"), retained)
        except Refused as exc:
            return exc.reason
        return "ok"

    assert admit("a", 995) == "ok"
    assert admit("a", 995) == "replay"
    assert admit("r", 1000, retained=True) == "retained"
    assert admit("s", 989.9) == "stale" and admit("f", 1010.1) == "future"
    assert admit("b", 1000) == "ok"
    assert admit("c", 1000) == "flood"  # capacity 2, both live: refuse, never evict
    # The wall clock jumps back 100 s: "a" is fresh again by ts, but still remembered.
    wall[0] = 900.0
    assert admit("a", 895) == "replay"
    mono[0] += 20.1  # ids expire on the monotonic clock after 2 * max_age_s
    assert admit("a", 895) == "ok"


def test_bus_queue_is_bounded_and_never_blocks() -> None:
    counted: list[tuple[str, str]] = []
    settings = BrokerSettings(host="127.0.0.1", port=1, tls=False, queue_size=8)
    bus = FleetBus(settings, "g", False, lambda c: None,
                   lambda kind, result: counted.append((kind, result)))
    # Not started: nobody drains, as with a hung broker; the journal side must not wait.
    for i in range(20):
        bus.observe({"kind": "decision", "verdict": "grant", "n": i})
    assert bus.dropped == 12 and counted.count(("publish", "dropped")) == 12


def test_lockdown_turns_grants_into_denials_and_survives_restart(tmp_path: Path) -> None:
    path = tmp_path / "lockdown.json"

    class Inner:
        def __init__(self, verdict: Any) -> None:
            self.verdict = verdict

        def check(self, h: str, c: bytes, now: float) -> Decision:
            return Decision(verdict=self.verdict, reason="ok", source="list", label="A")

    lockdown = Lockdown(path)
    assert not lockdown.on
    assert LockdownChain(Inner("grant"), lockdown).check("h", b"", 0).verdict == "grant"
    assert lockdown.set(True)
    assert Lockdown(path).on  # a restart reads it back
    d = LockdownChain(Inner("grant"), Lockdown(path)).check("h", b"", 0)
    assert (d.verdict, d.reason, d.label) == ("deny", "lockdown", "A")
    assert LockdownChain(Inner("staff"), lockdown).check("h", b"", 0).verdict == "staff"
    path.write_text("{garbage")
    assert Lockdown(path).on  # unreadable: fail closed
    path.write_text('{"on": "no"}')
    assert Lockdown(path).on
    lockdown.set(False)
    assert not Lockdown(path).on


def test_metrics_follow_journal_events_and_scrape(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.db", "g1")
    metrics = GateMetrics("g1")
    journal.subscribe(metrics.observe)
    metrics.bind(Readings(server_reachable=lambda: 1.0, outbox_size=journal.pending_count,
                          cache_age_s=lambda: 1 / 0))  # a failing reading is NaN, no 500
    port = metrics.serve("127.0.0.1", 0)
    try:
        journal.record("decision", verdict="grant", reason="ok", source="list",
                       code_sha256="ab", latency_ms=42.0)
        journal.record("decision", verdict="deny", reason="unknown", source="none",
                       code_sha256="cd", latency_ms=3.0)
        journal.record("decision", verdict="grant", reason="ok", source="exit_request",
                       code_sha256=None, latency_ms=0.1)
        journal.record("door", state="unlocked")
        journal.record("alarm", alarm="forced_open", event="raised")
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
    finally:
        metrics.close()
        journal.close()
    fams = {f.name: f for f in text_string_to_metric_families(text.decode())}
    decisions = {(s.labels["verdict"], s.labels["source"]): s.value
                 for s in fams["gate_decisions"].samples if s.name.endswith("_total")}
    assert decisions == {("grant", "list"): 1, ("deny", "none"): 1, ("grant", "exit_request"): 1}
    hist = {s.name: s.value for s in fams["gate_capture_to_relay_seconds"].samples
            if not s.labels}
    assert hist["gate_capture_to_relay_seconds_count"] == 2  # camera decisions only
    assert abs(hist["gate_capture_to_relay_seconds_sum"] - 0.045) < 1e-9
    assert fams["gate_relay_unlocked"].samples[0].value == 1
    assert fams["gate_alarm_active"].samples[0].labels == {"alarm": "forced_open"}
    assert fams["gate_outbox_events"].samples[0].value == 5
    assert fams["gate_server_reachable"].samples[0].value == 1
    cache_age = fams["gate_cache_age_seconds"].samples[0].value
    assert cache_age != cache_age  # NaN
    assert "gate_frames" in fams and "gate_mqtt_connected" in fams


@pytest.mark.parametrize("mqtt, problem", [
    ({"url": "mqtt://broker.example.org"}, "loopback"),
    ({"url": "http://127.0.0.1"}, "mqtts://"),
    ({"url": "mqtts://b.example.org", "password_file": "pw"}, "set username too"),
    ({"url": "mqtts://b.example.org", "client_key": "k"}, "set both"),
    ({"url": "mqtts://b.example.org", "topic_prefix": "a/#"}, "plain topic"),
    ({}, "required"),
])
def test_config_mqtt_rules(tmp_path: Path, mqtt: dict[str, Any], problem: str) -> None:
    path = write_config(tmp_path / "g.toml", {"mqtt": mqtt})
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    assert any("[mqtt]" in p and problem in p for p in exc.value.problems), exc.value.problems


def test_config_mqtt_and_metrics_accepted(tmp_path: Path) -> None:
    path = write_config(tmp_path / "g.toml", {"mqtt": {"url": "mqtts://b.example.org"},
                                              "metrics": {}})
    cfg = load_config(path)
    assert cfg.mqtt is not None and cfg.mqtt.discovery_prefix == "homeassistant"
    assert cfg.metrics is not None and cfg.metrics.listen == "127.0.0.1:9108"
    bad = write_config(tmp_path / "b.toml", {"metrics": {"listen": "9108"}})
    with pytest.raises(ConfigError):
        load_config(bad)


COUNTING = {"site": "hq", "direction": "in", "mode": "hard", "capacity": 120, "inside": 37,
            "full": False, "lease": None}


def _configs(messages: list[tuple[str, str]]) -> dict[str, tuple[str, dict[str, Any]]]:
    out = {}
    for topic, payload in messages:
        _, component, _, key, _ = topic.split("/")
        out[key] = (component, json.loads(payload))
    return out


def test_discovery_occupancy_sensors_only_where_the_site_counts() -> None:
    topics = Topics.for_gate("gate", "g 1")
    plain = _configs(discovery_messages("g 1", topics, "homeassistant", True))
    assert "occupancy" not in plain and "capacity" not in plain
    counted = _configs(discovery_messages("g 1", topics, "homeassistant", True, occupancy=True))
    assert set(counted) - set(plain) == {"occupancy", "capacity"}
    for component, cfg in counted.values():
        check_ha_config(component, cfg)  # every config, the new two among them
    component, inside = counted["occupancy"]
    assert component == "sensor" and inside["state_topic"] == "gate/g 1/state"
    assert inside["value_template"] == "{{ value_json.occupancy_inside }}"
    assert inside["unique_id"] == "gate_g_1_occupancy" and inside["state_class"] == "measurement"
    assert counted["capacity"][1]["value_template"] == "{{ value_json.occupancy_capacity }}"


@pytest.mark.parametrize("occupancy, reading", [
    (COUNTING, OccupancyReading(inside=37, capacity=120)),
    ({**COUNTING, "mode": "soft", "inside": None}, OccupancyReading(inside=None, capacity=120)),
    ({**COUNTING, "inside": -1}, OccupancyReading(inside=None, capacity=120)),
    ({**COUNTING, "inside": True}, OccupancyReading(inside=None, capacity=120)),
    ({**COUNTING, "mode": "off"}, None),            # the site does not count
    ({**COUNTING, "capacity": None}, None),         # no lease yet: nothing made up
    ({**COUNTING, "capacity": "120"}, None), ({**COUNTING, "capacity": 1e3}, None),
    ({**COUNTING, "mode": ["hard"]}, None),
    (None, None),                                   # no [gate] site
    ("hard", None), ([], None),
])
def test_occupancy_reading_from_the_status_object(occupancy: Any,
                                                  reading: OccupancyReading | None) -> None:
    assert occupancy_reading(occupancy) == reading


def test_bus_adds_and_drops_occupancy_sensors_as_the_site_starts_and_stops_counting() -> None:
    settings = BrokerSettings(host="127.0.0.1", port=1, tls=False)
    bus = FleetBus(settings, "g", True, lambda c: None)
    sent: list[tuple[str, str, bool]] = []
    bus._publish = lambda topic, payload, retain: sent.append((topic, payload, retain))  # type: ignore[method-assign]
    config = "homeassistant/sensor/gate_g/occupancy/config"

    def state() -> dict[str, Any]:
        body: dict[str, Any] = json.loads([p for t, p, _ in sent if t == "gate/g/state"][-1])
        return body

    bus._apply_status({"lockdown": False, "occupancy": None})  # no [gate] site
    assert not [t for t, _, _ in sent if "/sensor/" in t]
    assert state()["occupancy_inside"] is None
    bus._apply_status({"occupancy": {**COUNTING, "capacity": None}})  # before the first lease
    assert not [t for t, _, _ in sent if "/sensor/" in t]
    bus._apply_status({"occupancy": COUNTING})
    added = {t: p for t, p, retain in sent if "/sensor/" in t and retain}
    assert set(added) == {config, "homeassistant/sensor/gate_g/capacity/config"}
    assert json.loads(added[config])["name"] == "People inside"
    assert (state()["occupancy_inside"], state()["occupancy_capacity"]) == (37, 120)
    assert any("occupancy" in t for t, _ in bus._discovery())  # also sent on a reconnect
    sent.clear()
    bus._apply_status({"occupancy": {**COUNTING, "inside": 38}})  # a new count, no new config
    assert not [t for t, _, _ in sent if "/sensor/" in t] and state()["occupancy_inside"] == 38
    bus._apply_status({"cache_age_s": 3})  # a snapshot without the key keeps the sensors
    assert not [t for t, _, _ in sent if "/sensor/" in t] and state()["occupancy_inside"] == 38
    bus._apply_status({"occupancy": {**COUNTING, "mode": "off"}})
    removed = [(t, p) for t, p, retain in sent if "/sensor/" in t and retain]
    assert (config, "") in removed and len(removed) == 2  # empty retained: HA drops them
    assert state()["occupancy_inside"] is None
    assert not any("occupancy" in t for t, _ in bus._discovery())
