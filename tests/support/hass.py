"""Home Assistant's MQTT discovery schemas, as the fleet tests check our configs against."""

from __future__ import annotations

from typing import Any

# Home Assistant's documented MQTT discovery options (integrations/{lock,binary_sensor,
# event,sensor}.mqtt): required keys, and every key a config may carry.
COMMON = {"name", "unique_id", "object_id", "device", "availability_topic",
          "payload_available", "payload_not_available", "entity_category", "icon",
          "enabled_by_default", "qos", "json_attributes_topic", "encoding", "platform"}
SCHEMAS: dict[str, tuple[set[str], set[str]]] = {
    "lock": ({"command_topic"}, {"command_template", "payload_lock", "payload_unlock",
                                 "payload_open", "state_topic", "state_locked",
                                 "state_unlocked", "state_jammed", "state_locking",
                                 "state_unlocking", "optimistic", "retain", "value_template",
                                 "code_format"}),
    "binary_sensor": ({"state_topic"}, {"device_class", "payload_on", "payload_off",
                                        "value_template", "expire_after", "off_delay",
                                        "force_update"}),
    "event": ({"state_topic", "event_types"}, {"device_class", "value_template"}),
    "sensor": ({"state_topic"}, {"device_class", "unit_of_measurement", "state_class",
                                 "value_template", "expire_after", "force_update",
                                 "suggested_display_precision"}),
}
DEVICE_KEYS = {"identifiers", "connections", "manufacturer", "model", "model_id", "name",
               "sw_version", "hw_version", "serial_number", "suggested_area", "via_device",
               "configuration_url"}
BINARY_CLASSES = {"door", "connectivity", "safety", "problem", "lock", "opening"}
SENSOR_CLASSES = {"duration"}
ENTITY_CATEGORIES = {"config", "diagnostic"}
STATE_CLASSES = {"measurement", "total", "total_increasing"}
EVENT_CLASSES = {"button", "doorbell", "motion"}


def check_ha_config(component: str, cfg: dict[str, Any]) -> None:
    required, optional = SCHEMAS[component]
    assert required <= set(cfg), (component, required - set(cfg))
    assert set(cfg) <= required | optional | COMMON, (component, set(cfg) - required
                                                      - optional - COMMON)
    assert all(isinstance(cfg[k], str) and cfg[k] for k in cfg
               if k.endswith("_topic") or k in ("name", "unique_id"))
    assert "+" not in cfg.get("command_topic", "") and "#" not in cfg["state_topic"]
    device = cfg["device"]
    assert set(device) <= DEVICE_KEYS and device["identifiers"] and device["model"]
    assert device["sw_version"]
    if "entity_category" in cfg:
        assert cfg["entity_category"] in ENTITY_CATEGORIES
    if component == "binary_sensor" and "device_class" in cfg:
        assert cfg["device_class"] in BINARY_CLASSES
    if component == "sensor":
        assert cfg.get("device_class", "duration") in SENSOR_CLASSES
        assert cfg.get("state_class", "measurement") in STATE_CLASSES
    if component == "event":
        assert isinstance(cfg["event_types"], list) and cfg["event_types"]
        assert all(isinstance(t, str) for t in cfg["event_types"])
        assert cfg.get("device_class", "button") in EVENT_CLASSES
    if component == "lock":
        assert isinstance(cfg.get("optimistic", False), bool)
