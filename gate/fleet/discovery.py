"""Home Assistant MQTT discovery: the retained config messages that make a gate appear in
Home Assistant as one device with a lock, a door contact, an access-decision event and a few
sensors (people inside a counting site among them), and the topics their states travel on."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .. import __version__
from ..contracts import VERDICTS

MODEL = "gate QR door controller"
ONLINE, OFFLINE = "online", "offline"
LOCKED, UNLOCKED, JAMMED = "LOCKED", "UNLOCKED", "JAMMED"
EVENT_TYPES = list(VERDICTS)

# Home Assistant fills `value` with payload_lock/payload_unlock; the gate wants a timestamped
# command with a fresh id (see fleet/commands.py), which the template makes.
COMMAND_TEMPLATE = ('{"v":1,"cmd":"{{ value }}","id":"ha-{{ now().timestamp() }}",'
                    '"ts":{{ now().timestamp() }}}')


@dataclass(frozen=True)
class OccupancyReading:
    """The part of the status `occupancy` object Home Assistant shows: people inside the
    site by the server's last count, and its capacity."""

    inside: int | None
    capacity: int


def _count(value: Any) -> int | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 10_000_000
    return value if ok else None


def occupancy_reading(occupancy: Any) -> OccupancyReading | None:
    """None unless the site counts: `[gate] site` set (else the status has no object), the
    server's mode soft or hard, and a capacity it told us (before the first lease the gate
    knows none, and a made-up number is worse than no sensor)."""
    if not isinstance(occupancy, dict) or occupancy.get("mode") not in ("soft", "hard"):
        return None
    capacity = _count(occupancy.get("capacity"))
    if capacity is None:
        return None
    return OccupancyReading(inside=_count(occupancy.get("inside")), capacity=capacity)


@dataclass(frozen=True)
class Topics:
    """Every topic of one gate, under `{topic_prefix}/{gate_id}/`."""

    base: str

    @classmethod
    def for_gate(cls, topic_prefix: str, gate_id: str) -> Topics:
        return cls(f"{topic_prefix.rstrip('/')}/{gate_id}")

    @property
    def availability(self) -> str:
        return f"{self.base}/availability"

    @property
    def lock(self) -> str:
        return f"{self.base}/lock"

    @property
    def door(self) -> str:
        return f"{self.base}/door"

    @property
    def event(self) -> str:
        return f"{self.base}/event"

    @property
    def state(self) -> str:
        return f"{self.base}/state"

    @property
    def command(self) -> str:
        return f"{self.base}/command"


def object_id(gate_id: str) -> str:
    """A discovery node id: HA allows only [a-zA-Z0-9_-] there."""
    return "gate_" + "".join(c if c.isalnum() or c in "_-" else "_" for c in gate_id)


OCCUPANCY_KEYS = ("occupancy", "capacity")


def occupancy_removals(gate_id: str, discovery_prefix: str) -> list[tuple[str, str]]:
    """The empty retained configs that make Home Assistant drop the occupancy sensors (the
    site stopped counting)."""
    node = object_id(gate_id)
    return [(f"{discovery_prefix}/sensor/{node}/{key}/config", "") for key in OCCUPANCY_KEYS]


def discovery_messages(gate_id: str, topics: Topics, discovery_prefix: str,
                       with_server: bool, occupancy: bool = False) -> list[tuple[str, str]]:
    """(topic, JSON payload) of every retained discovery config for this gate; `occupancy`:
    the site counts (see occupancy_reading), so people inside and capacity are sensors."""
    node = object_id(gate_id)
    device = {"identifiers": [node], "name": f"Gate {gate_id}", "manufacturer": "gate",
              "model": MODEL, "sw_version": __version__}
    common = {"availability_topic": topics.availability, "payload_available": ONLINE,
              "payload_not_available": OFFLINE, "device": device}
    configs: list[tuple[str, str, dict[str, Any]]] = [
        ("lock", "lock", {
            "name": "Door lock", "command_topic": topics.command,
            "command_template": COMMAND_TEMPLATE, "payload_lock": "lock",
            "payload_unlock": "unlock", "state_topic": topics.lock, "state_locked": LOCKED,
            "state_unlocked": UNLOCKED, "state_jammed": JAMMED, "optimistic": False,
            "retain": False}),
        ("binary_sensor", "door", {
            "name": "Door", "device_class": "door", "state_topic": topics.door,
            "payload_on": "open", "payload_off": "closed"}),
        ("event", "access", {
            "name": "Access", "state_topic": topics.event, "event_types": EVENT_TYPES}),
        ("sensor", "latency", {
            "name": "Capture to relay", "state_topic": topics.state,
            "value_template": "{{ value_json.latency_ms }}", "unit_of_measurement": "ms",
            "device_class": "duration", "state_class": "measurement",
            "entity_category": "diagnostic"}),
        ("binary_sensor", "lockdown", {
            "name": "Lockdown", "state_topic": topics.state,
            "value_template": "{{ 'ON' if value_json.lockdown else 'OFF' }}",
            "device_class": "safety", "entity_category": "diagnostic"}),
    ]
    if with_server:  # without a [server] there is no cache and nothing to reach
        configs += [
            ("sensor", "cache_age", {
                "name": "Cache age", "state_topic": topics.state,
                "value_template": "{{ value_json.cache_age_s }}", "unit_of_measurement": "s",
                "device_class": "duration", "state_class": "measurement",
                "entity_category": "diagnostic"}),
            ("binary_sensor", "server", {
                "name": "Server reachable", "state_topic": topics.state,
                "value_template": "{{ 'ON' if value_json.server_reachable else 'OFF' }}",
                "device_class": "connectivity", "entity_category": "diagnostic"}),
        ]
    if occupancy:
        configs += [
            ("sensor", "occupancy", {
                "name": "People inside", "state_topic": topics.state,
                "value_template": "{{ value_json.occupancy_inside }}",
                "unit_of_measurement": "people", "state_class": "measurement",
                "icon": "mdi:account-group"}),
            ("sensor", "capacity", {
                "name": "Site capacity", "state_topic": topics.state,
                "value_template": "{{ value_json.occupancy_capacity }}",
                "unit_of_measurement": "people", "icon": "mdi:account-multiple-check"}),
        ]
    out = []
    for component, key, config in configs:
        payload = {**config, **common, "unique_id": f"{node}_{key}",
                   "object_id": f"{node}_{key}"}
        out.append((f"{discovery_prefix}/{component}/{node}/{key}/config",
                    json.dumps(payload, separators=(",", ":"))))
    return out
