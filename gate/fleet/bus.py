"""The fleet bus: the gate's MQTT client (paho-mqtt 2.x). It publishes discovery configs,
availability (with a last will), lock, door, decision events and diagnostics, and takes
remote commands. It is never on the door path: the journal hands it events through a
bounded queue (full -> dropped and counted), and paho's own thread does the network."""

from __future__ import annotations

import json
import logging
import queue
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from .commands import Command, Refused, ReplayGuard, parse_command
from .discovery import (
    JAMMED,
    LOCKED,
    OCCUPANCY_KEYS,
    OFFLINE,
    ONLINE,
    UNLOCKED,
    Topics,
    discovery_messages,
    occupancy_reading,
    occupancy_removals,
)

log = logging.getLogger(__name__)

Counter = Callable[[str, str], None]  # (kind, result): "command", "ok" | a refusal reason


@dataclass(frozen=True)
class BrokerSettings:
    """Where and how to reach the broker; plain values, read from [mqtt] by the daemon."""

    host: str
    port: int
    tls: bool
    username: str | None = None
    password: str | None = None
    ca_file: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    topic_prefix: str = "gate"
    discovery_prefix: str = "homeassistant"
    keepalive_s: int = 30
    command_max_age_s: float = 10.0
    queue_size: int = 256


class FleetBus:
    """One gate on the broker. `observe(event)` is the journal subscriber (never blocks);
    `observe_status(snapshot)` takes `gate status`'s snapshot; `handler(command)` runs each
    accepted command (on paho's thread)."""

    def __init__(self, settings: BrokerSettings, gate_id: str, with_server: bool,
                 handler: Callable[[Command], None], count: Counter | None = None,
                 guard: ReplayGuard | None = None) -> None:
        self.settings = settings
        self.gate_id = gate_id
        self.with_server = with_server
        self.topics = Topics.for_gate(settings.topic_prefix, gate_id)
        self.handler = handler
        self.count: Counter = count or (lambda kind, result: None)
        self.guard = guard or ReplayGuard(settings.command_max_age_s)
        self.dropped = 0
        self.connected = False
        self._queue: queue.Queue[tuple[str, dict[str, Any]] | None] = queue.Queue(
            settings.queue_size)
        self._lock = threading.Lock()  # guards the retained state below
        self._relay, self._door, self._jam = LOCKED, "", set[str]()
        self._state: dict[str, Any] = {"latency_ms": None, "cache_age_s": None,
                                       "server_reachable": None, "lockdown": False,
                                       "occupancy_inside": None, "occupancy_capacity": None}
        self._occupancy = False  # the site counts: its two sensors are discovered
        self._client = self._make_client()
        self._worker = threading.Thread(target=self._drain, name="mqtt-publisher", daemon=True)

    def _make_client(self) -> mqtt.Client:
        s = self.settings
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"gate-{self.gate_id}",
                             protocol=mqtt.MQTTv5)
        if s.tls:
            client.tls_set(ca_certs=str(s.ca_file) if s.ca_file else None,
                           certfile=str(s.client_cert) if s.client_cert else None,
                           keyfile=str(s.client_key) if s.client_key else None,
                           cert_reqs=ssl.CERT_REQUIRED, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        if s.username is not None:
            client.username_pw_set(s.username, s.password)
        # Retained, so Home Assistant shows the gate unavailable when it vanishes.
        client.will_set(self.topics.availability, OFFLINE, qos=1, retain=True)
        client.reconnect_delay_set(min_delay=1, max_delay=60)  # doubling backoff
        client.max_queued_messages_set(200)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    def start(self) -> None:
        self._worker.start()
        self._client.connect_async(self.settings.host, self.settings.port,
                                   keepalive=self.settings.keepalive_s)
        self._client.loop_start()  # paho's thread: connects, reconnects with backoff

    def close(self) -> None:
        """Say offline (a clean stop sends no last will), then stop both threads."""
        try:
            self._queue.put_nowait(None)
        except queue.Full:
            pass
        self._worker.join(timeout=2.0)
        if self.connected:
            info = self._client.publish(self.topics.availability, OFFLINE, qos=1, retain=True)
            try:
                info.wait_for_publish(timeout=1.0)
            except (RuntimeError, ValueError):
                pass
        self._client.disconnect()
        self._client.loop_stop()

    # -- the journal side: never blocks ------------------------------------------------------

    def observe(self, event: dict[str, Any]) -> None:
        self._offer(("event", event))

    def observe_status(self, snapshot: dict[str, Any]) -> None:
        self._offer(("status", snapshot))

    def _offer(self, item: tuple[str, dict[str, Any]]) -> None:
        try:
            self._queue.put_nowait(item)
        except queue.Full:  # a hung broker costs us updates, never the door time
            self.dropped += 1
            self.count("publish", "dropped")

    def _drain(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            try:
                kind, body = item
                if kind == "event":
                    self._apply_event(body)
                else:
                    self._apply_status(body)
            except Exception:  # one odd event must not stop the publisher
                log.exception("mqtt: publishing an update failed")

    def _apply_event(self, event: dict[str, Any]) -> None:
        kind = event.get("kind")
        if kind == "decision":
            payload = {"event_type": event.get("verdict"), "reason": event.get("reason"),
                       "source": event.get("source"), "label": event.get("label") or "",
                       "pass_id": event.get("pass_id"), "at": event.get("at")}
            self._publish(self.topics.event, json.dumps(payload), retain=False)
            if isinstance(event.get("latency_ms"), (int, float)) and event.get("code_sha256"):
                with self._lock:
                    self._state["latency_ms"] = event["latency_ms"]
                self._publish_state()
        elif kind == "door":
            state = event.get("state")
            with self._lock:
                if state in ("unlocked", "locked"):
                    self._relay = UNLOCKED if state == "unlocked" else LOCKED
                    self._jam.discard("error")  # the relay answered again
                elif state in ("open", "closed"):
                    self._door = str(state)
            self._publish_lock_and_door()
        elif kind == "alarm" and event.get("alarm") == "forced_open":
            with self._lock:  # the door opened while the relay held it: not locked, jammed
                (self._jam.add if event.get("event") == "raised" else self._jam.discard)(
                    "forced_open")
            self._publish_lock_and_door()
        elif kind == "system" and event.get("event") == "error":
            with self._lock:
                self._jam.add("error")
            self._publish_lock_and_door()

    def _apply_status(self, snap: dict[str, Any]) -> None:
        """Keys present in `snap` replace the published ones (others stay)."""
        with self._lock:
            if "server_reachable" in snap:
                reachable = snap["server_reachable"]
                self._state["server_reachable"] = reachable if isinstance(reachable,
                                                                          bool) else None
            if "cache_age_s" in snap:
                age = snap["cache_age_s"]
                self._state["cache_age_s"] = (round(age, 1) if isinstance(age, (int, float))
                                              else None)
            if "lockdown" in snap:
                self._state["lockdown"] = bool(snap["lockdown"])
            changed = False
            if "occupancy" in snap:
                reading = occupancy_reading(snap["occupancy"])
                self._state["occupancy_inside"] = reading.inside if reading else None
                self._state["occupancy_capacity"] = reading.capacity if reading else None
                changed = (reading is not None) != self._occupancy
                self._occupancy = reading is not None
        if changed:
            self._publish_occupancy_discovery()
        self._publish_state()

    def _publish_occupancy_discovery(self) -> None:
        """The site started or stopped counting (a lease told us): add or drop the sensors."""
        if self._occupancy:
            ends = tuple(f"/{key}/config" for key in OCCUPANCY_KEYS)
            messages = [m for m in self._discovery() if m[0].endswith(ends)]
        else:
            messages = occupancy_removals(self.gate_id, self.settings.discovery_prefix)
        for topic, payload in messages:
            self._publish(topic, payload, retain=True)

    def _discovery(self) -> list[tuple[str, str]]:
        return discovery_messages(self.gate_id, self.topics, self.settings.discovery_prefix,
                                  self.with_server, self._occupancy)

    def _publish_lock_and_door(self) -> None:
        with self._lock:
            lock = JAMMED if self._jam else self._relay
            door = self._door
        self._publish(self.topics.lock, lock, retain=True)
        if door:
            self._publish(self.topics.door, door, retain=True)

    def _publish_state(self) -> None:
        with self._lock:
            body = json.dumps(self._state)
        self._publish(self.topics.state, body, retain=True)

    def _publish(self, topic: str, payload: str, retain: bool) -> None:
        if not self.connected:  # states are re-sent on connect; the journal keeps events
            return
        info = self._client.publish(topic, payload, qos=1, retain=retain)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            self.dropped += 1
            self.count("publish", "dropped")

    # -- paho's thread -----------------------------------------------------------------------

    def _on_connect(self, client: mqtt.Client, _userdata: Any, _flags: Any,
                    reason: ReasonCode, _props: Properties | None) -> None:
        if reason.is_failure:
            log.warning("mqtt: broker refused the connection: %s", reason)
            return
        log.info("mqtt: connected to %s:%d", self.settings.host, self.settings.port)
        self.connected = True
        # Retained commands and retain-as-published: a retained command is visible as such.
        options = SubscribeOptions(qos=1, retainAsPublished=True)
        client.subscribe(self.topics.command, options=options)
        for topic, payload in self._discovery():
            client.publish(topic, payload, qos=1, retain=True)
        client.publish(self.topics.availability, ONLINE, qos=1, retain=True)
        self._publish_lock_and_door()
        self._publish_state()

    def _on_disconnect(self, _client: mqtt.Client, _userdata: Any, _flags: Any,
                       reason: ReasonCode, _props: Properties | None) -> None:
        if self.connected:
            log.warning("mqtt: disconnected (%s); reconnecting with backoff", reason)
        self.connected = False

    def _on_message(self, _client: mqtt.Client, _userdata: Any,
                    msg: mqtt.MQTTMessage) -> None:
        try:
            command = parse_command(bytes(msg.payload))
            self.guard.admit(command, retained=bool(msg.retain))
        except Refused as exc:
            log.warning("mqtt: command refused (%s)", exc.reason)  # never the payload
            self.count("command", exc.reason)
            return
        except Exception:  # hostile input must never take paho's thread down
            log.exception("mqtt: reading a command failed")
            self.count("command", "error")
            return
        try:
            self.handler(command)
        except Exception:
            log.exception("mqtt: command %s failed", command.cmd)
            self.count("command", "error")
            return
        self.count("command", "ok")

