"""The typed config (TOML): the schema, loading and validation, and the cross-key checks.
Every key has a default, a description and bounds; every error names file, key and problem."""

from ..errors import ConfigError
from .checks import (
    broker_address,
    check_mqtt,
    cross_checks,
    indicator_pins,
    parse_listen,
)
from .loading import load_config, parse_config
from .schema import (
    DEFAULT_CONFIG_PATH,
    MAX_CONFIG_BYTES,
    MAX_STRING_CHARS,
    SECTIONS,
    CameraSection,
    Config,
    DecoderSection,
    DoorSection,
    GateSection,
    GpioSection,
    IndicatorsSection,
    InputsSection,
    JournalSection,
    ListSection,
    LockoutSection,
    MetricsSection,
    MqttSection,
    OccupancySection,
    PassesSection,
    Pattern,
    PolicySection,
    ServerSection,
    Steady,
    Verdict,
    describe,
    opt,
    restart_opt,
)

__all__ = [
    "DEFAULT_CONFIG_PATH", "MAX_CONFIG_BYTES", "MAX_STRING_CHARS", "SECTIONS", "CameraSection",
    "Config", "ConfigError", "DecoderSection", "DoorSection", "GateSection", "GpioSection",
    "IndicatorsSection", "InputsSection", "JournalSection", "ListSection", "LockoutSection",
    "MetricsSection", "MqttSection", "OccupancySection", "PassesSection", "Pattern",
    "PolicySection", "ServerSection", "Steady",
    "Verdict", "broker_address", "check_mqtt", "cross_checks", "describe", "indicator_pins",
    "load_config", "opt", "parse_config", "parse_listen", "restart_opt",
]
