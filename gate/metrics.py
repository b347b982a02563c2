"""Prometheus metrics of one gate, on its own CollectorRegistry (never the global one), served
over HTTP at [metrics] listen. Counters follow the journal (the one path every event takes);
gauges that describe "now" are read from callables at scrape time."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

log = logging.getLogger(__name__)

Reading = Callable[[], float | None]


def _nan_if_none(read: Reading) -> Callable[[], float]:
    def value() -> float:
        try:
            v = read()
        except Exception:  # a scrape must not fail because one reading did
            log.exception("metrics: reading a gauge failed")
            return float("nan")
        return float("nan") if v is None else float(v)
    return value


@dataclass
class Readings:
    """What the gauges read at scrape time; each returns None when it does not apply."""

    server_reachable: Reading = lambda: None
    cache_age_s: Reading = lambda: None
    outbox_size: Reading = lambda: None
    dead_letters: Reading = lambda: None
    mqtt_connected: Reading = lambda: None
    extra: dict[str, Reading] = field(default_factory=dict)


class GateMetrics:
    """The gate's metrics; `observe(event)` is a journal subscriber (cheap, never blocks)."""

    def __init__(self, gate_id: str) -> None:
        self.registry = r = CollectorRegistry(auto_describe=True)
        self.frames = Counter("gate_frames", "camera frames read", registry=r)
        self.decode_seconds = Histogram(
            "gate_decode_seconds", "time to scan one frame (decode, second chance)",
            buckets=(0.002, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64), registry=r)
        self.decisions = Counter("gate_decisions", "access decisions",
                                 ["verdict", "reason", "source"], registry=r)
        self.latency_seconds = Histogram(
            "gate_capture_to_relay_seconds", "from a frame's capture to the relay command",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2), registry=r)
        self.relay_unlocked = Gauge("gate_relay_unlocked", "1 while the relay releases the "
                                    "door", registry=r)
        self.door_open = Gauge("gate_door_open", "1 while the door contact reads open (NaN "
                               "without a contact)", registry=r)
        self.door_open.set(float("nan"))
        self.alarm_active = Gauge("gate_alarm_active", "1 while an alarm is raised",
                                  ["alarm"], registry=r)
        self.alarms = Counter("gate_alarms", "alarms raised", ["alarm"], registry=r)
        self.mqtt_messages = Counter(
            "gate_mqtt_messages", "MQTT commands by result (ok or why refused) and publishes "
            "dropped", ["kind", "result"], registry=r)
        self._info = Gauge("gate_info", "this gate", ["gate"], registry=r)
        self._info.labels(gate_id).set(1)
        self._lock = threading.Lock()
        self._server: Any = None

    def bind(self, readings: Readings) -> None:
        """Gauges read at scrape time."""
        r = self.registry
        for name, doc, read in (
                ("gate_server_reachable", "1 reachable, 0 not, NaN without a server",
                 readings.server_reachable),
                ("gate_cache_age_seconds", "since the last credential sync (NaN: never or "
                 "no server)", readings.cache_age_s),
                ("gate_outbox_events", "journal events not yet uploaded", readings.outbox_size),
                ("gate_dead_letters", "events the server refused for good", readings.dead_letters),
                ("gate_mqtt_connected", "1 while connected to the broker (NaN: no [mqtt])",
                 readings.mqtt_connected)):
            Gauge(name, doc, registry=r).set_function(_nan_if_none(read))

    def observe(self, event: dict[str, Any]) -> None:
        kind = event.get("kind")
        if kind == "decision":
            self.decisions.labels(str(event.get("verdict")), str(event.get("reason")),
                                  str(event.get("source"))).inc()
            latency = event.get("latency_ms")
            # Only camera decisions have a capture time; a button's latency is not one.
            if event.get("code_sha256") and isinstance(latency, (int, float)) \
                    and event.get("source") not in ("exit_request", "staff_override", "remote"):
                self.latency_seconds.observe(latency / 1000.0)
        elif kind == "door":
            state = event.get("state")
            if state in ("unlocked", "locked"):
                self.relay_unlocked.set(1 if state == "unlocked" else 0)
            elif state in ("open", "closed"):
                self.door_open.set(1 if state == "open" else 0)
        elif kind == "alarm":
            name = str(event.get("alarm"))
            raised = event.get("event") == "raised"
            self.alarm_active.labels(name).set(1 if raised else 0)
            if raised:
                self.alarms.labels(name).inc()

    def count_mqtt(self, kind: str, result: str) -> None:
        self.mqtt_messages.labels(kind, result).inc()

    def serve(self, host: str, port: int) -> int:
        """Serve /metrics on host:port in a daemon thread; returns the bound port."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        self._server = server
        return int(server.server_address[1])

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
