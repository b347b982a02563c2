"""Rules that span keys (pins used twice, open_s above max_open_s, URLs and addresses);
each message names the key it is about."""

from __future__ import annotations

import dataclasses
import zoneinfo
from pathlib import Path

from .schema import Config, IndicatorsSection, MqttSection, _shown


def cross_checks(cfg: Config, path: Path) -> list[str]:
    """Rules that span keys; each message names the key it is about."""
    problems: list[str] = []
    seen: dict[int, str] = {}
    for where, pin in _pins(cfg, path, problems):
        if pin in seen:
            problems.append(f"{path}: {where}: pin {pin} is already used by {seen[pin]}")
        seen.setdefault(pin, where)
    problems.extend(_check_patterns(cfg.indicators, path))
    main = cfg.camera.main_size
    if main is not None and (main[0] < cfg.camera.size[0] or main[1] < cfg.camera.size[1]):
        problems.append(f"{path}: [camera] main_size: must be at least size "
                        f"{list(cfg.camera.size)} both ways, got {list(main)}")
    if cfg.door.open_s > cfg.door.max_open_s:
        problems.append(f"{path}: [door] open_s: must be <= [door] max_open_s "
                        f"({cfg.door.max_open_s}), got {cfg.door.open_s}")
    problems.extend(_check_timezone(cfg.gate.timezone, path))
    if cfg.server is not None:
        problems.extend(_check_server_url(cfg.server.url, path))
        if cfg.server.client_key is not None and cfg.server.client_cert is None:
            problems.append(f"{path}: [server] client_key: set client_cert too (the key alone "
                            "proves nothing)")
    if cfg.mqtt is not None:
        problems.extend(f"{path}: [mqtt] {p}" for p in check_mqtt(cfg.mqtt))
    if cfg.metrics is not None:
        try:
            parse_listen(cfg.metrics.listen)
        except ValueError as exc:
            problems.append(f"{path}: [metrics] listen: {exc}")
    return problems


def _is_loopback(host: str) -> bool:
    import ipaddress

    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def broker_address(url: str) -> tuple[str, int, bool]:
    """(host, port, tls) of an [mqtt] url; ValueError names what is wrong."""
    from urllib.parse import urlsplit

    if not url:
        raise ValueError("required when [mqtt] is present")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"not a valid URL: {exc}") from None
    host = parts.hostname
    if not host or parts.path not in ("", "/") or parts.query or parts.username:
        raise ValueError(f"must be mqtts://host[:port], got {url!r}")
    if parts.scheme == "mqtts":
        return host, port or 8883, True
    if parts.scheme == "mqtt":
        if not _is_loopback(host):
            raise ValueError(f"plain mqtt:// is allowed only for a loopback address, got {url!r}")
        return host, port or 1883, False
    raise ValueError(f"must be an mqtts:// URL, got {url!r}")


def check_mqtt(m: MqttSection) -> list[str]:
    problems = []
    try:
        broker_address(m.url)
    except ValueError as exc:
        problems.append(f"url: {exc}")
    if m.password_file is not None and m.username is None:
        problems.append("password_file: set username too")
    if (m.client_key is None) != (m.client_cert is None):
        problems.append("client_cert, client_key: set both or neither")
    for key in ("topic_prefix", "discovery_prefix"):
        value = getattr(m, key)
        if not value or any(c in value for c in "+#\0") or value.startswith("/"):
            problems.append(f"{key}: must be a plain topic (no + # or leading /), got {value!r}")
    return problems


def parse_listen(listen: str) -> tuple[str, int]:
    """HOST:PORT (IPv6 as [::1]:PORT) -> (host, port)."""
    host, sep, port = listen.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"must be HOST:PORT, e.g. 127.0.0.1:9108, got {listen!r}")
    return host, int(port)


LEGACY_INDICATOR_KEYS = ("granted_led_pin", "denied_led_pin", "buzzer_pin")


def indicator_pins(cfg: Config) -> dict[str, int | None]:
    """The indicator pins in effect: [indicators], or their older place in [door]."""
    ind = cfg.indicators
    pins: dict[str, int | None] = {"status_led_pin": ind.status_led_pin}
    for key in LEGACY_INDICATOR_KEYS:
        value = getattr(ind, key)
        pins[key] = value if value is not None else getattr(cfg.door, key)
    return pins


def _pins(cfg: Config, path: Path, problems: list[str]) -> list[tuple[str, int]]:
    """Every pin the config claims, each named by its section and key."""
    out: list[tuple[str, int | None]] = [("[door] relay_pin", cfg.door.relay_pin)]
    for key in LEGACY_INDICATOR_KEYS:
        old, new = getattr(cfg.door, key), getattr(cfg.indicators, key)
        if old is not None and new is not None:
            problems.append(f"{path}: [indicators] {key}: also set as [door] {key} (its older "
                            "place); set it in one place")
        out.append((f"[door] {key}", old) if new is None else (f"[indicators] {key}", new))
    out.append(("[indicators] status_led_pin", cfg.indicators.status_led_pin))
    for key in ("door_contact_pin", "exit_button_pin", "staff_button_pin"):
        out.append((f"[inputs] {key}", getattr(cfg.inputs, key)))
    return [(where, pin) for where, pin in out if pin is not None]


def _check_patterns(ind: IndicatorsSection, path: Path) -> list[str]:
    """Indicator patterns: times 0..60 s, counts 0..100 (the schema checks the shape)."""
    problems = []
    for f in dataclasses.fields(ind):
        value = getattr(ind, f.name)
        if not (isinstance(value, tuple) and value):
            continue
        times, counts = (value[:2], value[2:])
        if any(not 0 <= t <= 60 for t in times):
            problems.append(f"{path}: [indicators] {f.name}: on_s and off_s must be within "
                            f"0..60 seconds, got {list(value)}")
        if any(not 0 <= n <= 100 for n in counts):
            problems.append(f"{path}: [indicators] {f.name}: count must be within 0..100, "
                            f"got {list(value)}")
    return problems


def _check_server_url(url: str, path: Path) -> list[str]:
    import ipaddress
    from urllib.parse import urlsplit

    where = f"{path}: [server] url"
    if not url:
        return [f"{where}: required when [server] is present"]
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return []
    if parts.scheme == "http" and parts.hostname:
        host = parts.hostname
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if loopback:
            return []
        return [f"{where}: plain http:// is allowed only for a loopback address, got {_shown.repr(url)}"]
    return [f"{where}: must be an https:// URL, got {_shown.repr(url)}"]




def _check_timezone(name: str, path: Path) -> list[str]:
    try:
        zoneinfo.ZoneInfo(name)
    except (ValueError, OSError, zoneinfo.ZoneInfoNotFoundError):
        return [f"{path}: [gate] timezone: not an IANA time zone: {_shown.repr(name)}"]
    return []
