"""The typed config schema (TOML) and its validation: every key has a default, a description
and bounds, and every error names the file, the key and the problem."""

from __future__ import annotations

import dataclasses
import math
import os
import reprlib
import stat
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..errors import ConfigError

DEFAULT_CONFIG_PATH = Path("/etc/gate/gate.toml")
Verdict = Literal["grant", "deny", "staff"]
MAX_CONFIG_BYTES = 1 << 20   # a real config is a few KiB; a bigger file is a mistake
MAX_STRING_CHARS = 4096      # PATH_MAX, and far more than any id or URL needs

# Values shown in error messages are cut short: a huge or deeply nested value must not
# flood the log (or overflow the stack while being printed).
_shown = reprlib.Repr()
_shown.maxstring, _shown.maxother, _shown.maxlist, _shown.maxdict, _shown.maxlevel = \
    60, 60, 6, 6, 3


def opt(default: Any, doc: str, *, min: float | None = None, max: float | None = None,
        default_factory: Any = None, restart: bool = False) -> Any:
    """A schema field: its default, a one-line description, optional numeric bounds, and
    whether a reload (SIGHUP) applies it live or it waits for a restart."""
    meta = {"doc": doc, "min": min, "max": max, "restart": restart}
    if default_factory is not None:
        return field(default_factory=default_factory, metadata=meta)
    return field(default=default, metadata=meta)


def restart_opt(default: Any, doc: str, **kwargs: Any) -> Any:
    """A schema field that names wiring (pins, files, sockets, threads): a reload leaves it
    as it runs, and it takes effect after a restart."""
    return opt(default, doc, restart=True, **kwargs)


@dataclass(frozen=True)
class GateSection:
    id: str = restart_opt("gate", "names this gate in the journal and to the server")
    state_dir: Path = restart_opt(Path("/var/lib/gate"), "credential cache, journal and status file")
    log_level: Literal["debug", "info", "warning", "error"] = restart_opt("info", "log verbosity")
    site: str | None = restart_opt(None, "the site this door belongs to, for occupancy (the "
                                   "server knows it from the token; set it to count offline)")
    direction: Literal["in", "out", "both"] = restart_opt(
        "in", "where this door leads, for occupancy: in (entries count +1), out (exits -1), "
        "both (the server decides per pass; offline counted as in)")


@dataclass(frozen=True)
class CameraSection:
    source: Literal["picamera2", "files"] = restart_opt("picamera2", "picamera2 on a Pi; files replays images")
    size: tuple[int, int] = restart_opt((640, 480), "luma stream size [width, height]", min=16, max=4096)
    fps: float = restart_opt(15.0, "frames per second asked of the camera (files: pacing)", min=0.1, max=120)
    path: Path = restart_opt(Path("frames"), "files: a glob of PNG/JPEG images or a directory")
    loop: bool = restart_opt(False, "files: at the end start over (true) or stop the daemon, exit 0 (false)")
    stall_timeout_s: float = restart_opt(2.0, "no frame for this long ends the daemon non-zero", min=0.1, max=60)
    autofocus: bool = restart_opt(True, "picamera2: continuous autofocus where the camera has it")


@dataclass(frozen=True)
class DecoderSection:
    backend: Literal["zxing", "pyzbar"] = opt("zxing", "QR decoder library")
    repeat_guard_s: float = opt(3.0, "a code held in view counts again only after this long",
                                min=0.0, max=3600)
    leave_s: float = opt(0.5, "a code unseen for this long has left the view", min=0.0, max=60)
    second_chance: bool = opt(True, "zxing: a frame with nothing read is read again in a few "
                              "regions (last sighting, failed detections, most code-like "
                              "region), deblurred and upscaled: reads small, blurred codes")
    second_chance_min_score: float = opt(1.5, "zxing: texture score the most code-like region "
                                         "needs to be read again; lower reads more, costs more "
                                         "on empty frames", min=0.0, max=100)
    idle_skip: bool = opt(True, "skip decoding frames that look like the last decoded one "
                          "(their codes carry over)")
    full_decode_every: int = opt(10, "idle_skip: decode at least every this many frames",
                                 min=1, max=1000)
    idle_level: int = opt(12, "idle_skip: grey levels a thumbnail cell must move by to count "
                          "as a change", min=1, max=255)


@dataclass(frozen=True)
class GpioSection:
    pin_factory: Literal["default", "mock", "lgpio", "rpigpio", "pigpio", "native"] = restart_opt(
        "default", "gpiozero pin factory; mock runs on any machine")


@dataclass(frozen=True)
class DoorSection:
    relay_pin: int = restart_opt(17, "BCM number of the relay output", min=0, max=53)
    relay_active_high: bool = restart_opt(True, "false for relay boards that switch on a LOW line")
    open_s: float = opt(4.0, "how long a grant releases the door (at most max_open_s)",
                        min=0.1, max=600)
    max_open_s: float = opt(30.0, "the longest any release may last: caps a server's open_s "
                            "and bounds open_s", min=0.1, max=600)
    granted_led_pin: int | None = restart_opt(None, "optional green LED (BCM); same as [indicators] "
                                      "granted_led_pin, set it in one place", min=0, max=53)
    denied_led_pin: int | None = restart_opt(None, "optional red LED (BCM); same as [indicators] "
                                     "denied_led_pin, set it in one place", min=0, max=53)
    buzzer_pin: int | None = restart_opt(None, "optional buzzer (BCM); same as [indicators] buzzer_pin, "
                                 "set it in one place", min=0, max=53)
    fail_mode: Literal["secure", "safe"] = opt(
        "secure", "secure: a strike, locked without power, on the relay's NO contact; safe: a "
        "maglock, released without power, on the NC contact. The relay energises only to unlock")
    held_open_s: float = opt(30.0, "door contact open longer than this raises a held_open "
                             "alarm; 0 turns the alarm off", min=0, max=86400)
    forced_open_grace_s: float = opt(1.5, "an opening this soon after the relay relocked is not "
                                     "forced (the door may still be swinging shut)", min=0, max=60)


@dataclass(frozen=True)
class InputsSection:
    door_contact_pin: int | None = restart_opt(None, "door contact (reed switch between this BCM pin and "
                                       "GND; internal pull-up)", min=0, max=53)
    door_contact_normally_closed: bool = restart_opt(True, "true: the contact's circuit is closed while "
                                             "the door is shut (a cut wire reads as open)")
    exit_button_pin: int | None = restart_opt(None, "request-to-exit button (BCM pin to GND): releases the "
                                      "door for [door] open_s", min=0, max=53)
    staff_button_pin: int | None = restart_opt(None, "staff override button (BCM pin to GND): grants the "
                                       "code last answered 'staff'", min=0, max=53)
    staff_window_s: float = opt(30.0, "how long after a staff verdict the staff button grants",
                                min=1, max=3600)
    bounce_s: float = restart_opt(0.05, "an input counts once it has held its new level this long",
                          min=0, max=2)


Pattern = tuple[float, float, int]   # [on_s, off_s, count]
Steady = tuple[float, float]         # [on_s, off_s], repeated while a state lasts


@dataclass(frozen=True)
class IndicatorsSection:
    granted_led_pin: int | None = restart_opt(None, "green LED (BCM)", min=0, max=53)
    denied_led_pin: int | None = restart_opt(None, "red LED (BCM); also shows offline and fault when "
                                     "there is no status LED", min=0, max=53)
    status_led_pin: int | None = restart_opt(None, "status LED (BCM) for offline and fault", min=0, max=53)
    buzzer_pin: int | None = restart_opt(None, "buzzer (BCM)", min=0, max=53)
    active_high: bool = restart_opt(True, "false for LED/buzzer modules that switch on a LOW line")
    granted_led: Pattern = opt((0.0, 0.0, 1), "[on_s, off_s, count]; on_s 0: lit while the door "
                               "is released; count 0: off")
    granted_buzzer: Pattern = opt((0.1, 0.0, 1), "[on_s, off_s, count]; count 0: off")
    denied_led: Pattern = opt((1.0, 0.0, 1), "[on_s, off_s, count]; count 0: off")
    denied_buzzer: Pattern = opt((0.15, 0.1, 2), "[on_s, off_s, count]; count 0: off")
    staff_led: Pattern = opt((0.25, 0.25, 6), "staff check: [on_s, off_s, count]; count 0: off")
    staff_buzzer: Pattern = opt((0.1, 0.1, 3), "staff check: [on_s, off_s, count]; count 0: off")
    offline_led: Steady = opt((0.2, 1.8), "server unreachable: [on_s, off_s] repeated while it "
                              "lasts; on_s 0: off")
    offline_buzzer: Pattern = opt((0.0, 0.0, 0), "once when the server becomes unreachable: "
                                  "[on_s, off_s, count]; count 0: off")
    fault_led: Steady = opt((0.1, 0.1), "fault: [on_s, off_s] repeated while it lasts; on_s 0: off")
    fault_buzzer: Pattern = opt((1.0, 0.0, 1), "once when a fault begins: [on_s, off_s, count]; "
                                "count 0: off")
    lockdown_led: Steady = opt((0.5, 0.5), "lockdown (remote): [on_s, off_s] repeated while it "
                               "lasts; on_s 0: off")
    lockdown_buzzer: Pattern = opt((0.3, 0.2, 3), "once when a lockdown begins: [on_s, off_s, "
                                   "count]; count 0: off")
    full_led: Steady = opt((1.0, 0.25), "site full (the last entry was refused "
                           "occupancy_full, until one is granted): [on_s, off_s] repeated "
                           "while it lasts; on_s 0: off")
    full_buzzer: Pattern = opt((0.0, 0.0, 0), "once when the site becomes full: [on_s, off_s, "
                               "count]; count 0: off")


@dataclass(frozen=True)
class ListSection:
    path: Path = opt(Path("/etc/gate/allowlist.csv"),
                     "technician's allowlist CSV: code|code_sha256,label,valid_from,valid_until")
    watch_interval_s: float = opt(2.0, "how often the file is checked for changes", min=0.1, max=3600)


@dataclass(frozen=True)
class ServerSection:
    url: str = restart_opt("", "central server base URL (https://, or http:// on loopback only)")
    token_file: Path = restart_opt(Path("/etc/gate/token"), "file holding the bearer token")
    timeout_s: float = restart_opt(0.8, "budget for one online verification", min=0.05, max=30)
    sync_interval_s: float = restart_opt(60.0, "credential sync period", min=1, max=86400)
    ca_file: Path | None = restart_opt(None, "CA bundle to trust instead of the system's")
    client_cert: Path | None = restart_opt(None, "client certificate (PEM) for mutual TLS")
    client_key: Path | None = restart_opt(None, "client key (PEM, unencrypted) for mutual TLS")
    sync_timeout_s: float = restart_opt(30.0, "read budget of one credential sync request (not on the "
                                "door path)", min=1, max=3600)
    upload_interval_s: float = restart_opt(5.0, "how often pending journal events are uploaded",
                                   min=0.1, max=3600)
    upload_batch: int = restart_opt(200, "events per upload request", min=1, max=10000)
    upload_max_backoff_s: float = restart_opt(300.0, "longest wait between failed uploads", min=1,
                                      max=86400)


def _default_status() -> dict[str, str]:
    return {"green": "grant", "yellow": "staff", "red": "deny", "black": "deny"}


@dataclass(frozen=True)
class PolicySection:
    offline: Literal["cache", "deny"] = opt("cache", "an unreachable server: use the cache, or deny")
    max_cache_age_s: float = opt(604800.0, "a cache not synced for this long no longer grants",
                                 min=0, max=10 * 365 * 86400)
    status: dict[str, Verdict] = opt(None, "server colour -> verdict", default_factory=_default_status)


@dataclass(frozen=True)
class MqttSection:
    url: str = restart_opt("", "broker: mqtts://host[:8883], or mqtt://host[:1883] on loopback only")
    username: str | None = restart_opt(None, "broker user (one per gate; the broker's ACL authorises)")
    password_file: Path | None = restart_opt(None, "file holding the broker password, one line")
    ca_file: Path | None = restart_opt(None, "CA bundle for the broker's certificate instead of the "
                               "system's")
    client_cert: Path | None = restart_opt(None, "client certificate (PEM) instead of or with a password")
    client_key: Path | None = restart_opt(None, "client key (PEM, unencrypted)")
    topic_prefix: str = restart_opt("gate", "this gate's topics are {topic_prefix}/{[gate] id}/...")
    discovery_prefix: str = restart_opt("homeassistant", "Home Assistant's discovery prefix")
    keepalive_s: int = restart_opt(30, "MQTT keepalive; the broker sends the last will after 1.5x",
                           min=5, max=3600)
    command_max_age_s: float = restart_opt(10.0, "a command whose ts differs from the gate's clock by "
                                   "more is refused (replay); clocks must be NTP-synced",
                                   min=1, max=300)
    queue_size: int = restart_opt(256, "updates waiting for the broker; more are dropped and counted",
                          min=8, max=100000)


@dataclass(frozen=True)
class MetricsSection:
    listen: str = restart_opt("127.0.0.1:9108", "HOST:PORT of the Prometheus /metrics endpoint")


@dataclass(frozen=True)
class JournalSection:
    retention_days: float = restart_opt(90.0, "events older than this are pruned once uploaded (all "
                                "events when no [server] is set)", min=1, max=36500)
    on_write_error: Literal["deny", "grant_unrecorded"] = restart_opt(
        "deny", "a decision that cannot be journaled (disk full, I/O error): deny it (no "
        "opening goes unrecorded) or grant_unrecorded (open anyway); either way a fault shows")


@dataclass(frozen=True)
class LockoutSection:
    max_denials: int = opt(10, "this many denials within window_s lock the scanner (every "
                           "code denied locked_out, the server not asked); 0 turns it off",
                           min=0, max=10000)
    window_s: float = opt(60.0, "the window the denials are counted in", min=1, max=86400)
    cooldown_s: float = opt(60.0, "how long the scanner stays locked (buttons never are)",
                            min=1, max=86400)


@dataclass(frozen=True)
class OccupancySection:
    lease_interval_s: float = restart_opt(30.0, "how often the lease is renewed and the ledger "
                                          "and passages reported to the server", min=0.2,
                                          max=3600)
    passback_max_keys: int = restart_opt(100_000, "timed anti-passback offline: how many "
                                         "recent entries are remembered (oldest go first)",
                                         min=1, max=10_000_000)


@dataclass(frozen=True)
class Config:
    gate: GateSection = field(default_factory=GateSection)
    camera: CameraSection = field(default_factory=CameraSection)
    decoder: DecoderSection = field(default_factory=DecoderSection)
    gpio: GpioSection = field(default_factory=GpioSection)
    door: DoorSection = field(default_factory=DoorSection)
    inputs: InputsSection = field(default_factory=InputsSection)
    indicators: IndicatorsSection = field(default_factory=IndicatorsSection)
    list: ListSection = field(default_factory=ListSection)
    server: ServerSection | None = None
    policy: PolicySection = field(default_factory=PolicySection)
    journal: JournalSection = field(default_factory=JournalSection)
    mqtt: MqttSection | None = None
    metrics: MetricsSection | None = None
    lockout: LockoutSection = field(default_factory=LockoutSection)
    occupancy: OccupancySection = field(default_factory=OccupancySection)
    source_path: Path | None = None

    @property
    def journal_path(self) -> Path:
        return self.gate.state_dir / "journal.db"

    @property
    def credentials_path(self) -> Path:
        return self.gate.state_dir / "credentials.db"

    @property
    def status_path(self) -> Path:
        return self.gate.state_dir / "status.json"

    @property
    def occupancy_path(self) -> Path:
        return self.gate.state_dir / "occupancy.db"

    @property
    def lockdown_path(self) -> Path:
        return self.gate.state_dir / "lockdown.json"


SECTIONS: dict[str, Any] = {f.name: f.type for f in dataclasses.fields(Config)
                            if f.name != "source_path"}


def load_config(path: Path | str) -> Config:
    """Read and validate a TOML config; raise ConfigError listing every problem found.
    Nothing else escapes, whatever the file holds."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):  # a FIFO blocks, /dev/zero never ends
                raise ConfigError([f"{path}: not a regular file"])
            data = f.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError([f"{path}: file not found"]) from None
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError([f"{path}: larger than {MAX_CONFIG_BYTES} bytes; not a gate config"])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise ConfigError([f"{path}:{line}: not UTF-8 text (byte {exc.start})"]) from None
    try:
        raw = tomllib.loads(text)
    except ValueError as exc:  # TOMLDecodeError, and ints past Python's 4300-digit limit
        raise ConfigError([f"{path}: not valid TOML: {str(exc)[:200]}"]) from None
    except RecursionError:
        raise ConfigError([f"{path}: not valid TOML: arrays or tables nested too deeply"]) from None
    return parse_config(raw, path)


def parse_config(raw: dict[str, Any], path: Path) -> Config:
    problems: list[str] = []
    base_dir = path.resolve().parent
    hints = typing.get_type_hints(Config)
    sections: dict[str, Any] = {}
    for name, value in raw.items():
        if name not in SECTIONS:
            problems.append(f"{path}: [{_name(name)}]: unknown section "
                            f"(known: {', '.join(SECTIONS)})")
            continue
        if not isinstance(value, dict):
            problems.append(f"{path}: [{name}]: must be a table")
            continue
        cls = _section_class(hints[name])
        sections[name] = _parse_section(cls, name, value, path, base_dir, problems)
    for name, hint in hints.items():  # absent sections: their default paths resolve too
        if name in SECTIONS and name not in raw and not isinstance(hint, types.UnionType):
            sections[name] = _parse_section(hint, name, {}, path, base_dir, problems)
    cfg = Config(**{k: v for k, v in sections.items() if v is not None}, source_path=path)
    problems.extend(_cross_checks(cfg, path))
    if problems:
        raise ConfigError(problems)
    return cfg


def _name(name: str) -> str:
    """A section or key name as written, cut short and without control characters."""
    return name if len(name) <= 60 and name.isprintable() else _shown.repr(name)


def _section_class(hint: Any) -> type:
    if isinstance(hint, types.UnionType):  # ServerSection | None
        return typing.cast(type, next(a for a in typing.get_args(hint) if a is not type(None)))
    return typing.cast(type, hint)


def _parse_section(cls: type, section: str, raw: dict[str, Any], path: Path, base_dir: Path,
                   problems: list[str]) -> Any:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        where = f"{path}: [{section}] {_name(key)}"
        if key not in fields:
            problems.append(f"{where}: unknown key (known: {', '.join(fields)})")
            continue
        try:
            values[key] = _coerce(hints[key], value, fields[key].metadata, base_dir)
        except ValueError as exc:
            problems.append(f"{where}: {exc}")
    for key, f in fields.items():  # a relative default is relative to the file, as written ones
        if key not in values and isinstance(f.default, Path) and not f.default.is_absolute():
            values[key] = base_dir / f.default
    try:
        return cls(**values)
    except TypeError as exc:  # unreachable with the checks above, kept as a clear report
        problems.append(f"{path}: [{section}]: {exc}")
        return None


def _coerce(hint: Any, value: Any, meta: Any, base_dir: Path) -> Any:
    """Check one value against its declared type and bounds; return it in its Python type."""
    args = typing.get_args(hint)
    if isinstance(hint, types.UnionType):  # X | None: TOML has no null, a present key is X
        return _coerce(next(a for a in args if a is not type(None)), value, meta, base_dir)
    origin = typing.get_origin(hint)
    if origin is Literal:
        if not isinstance(value, (str, int)) or value not in args:
            raise ValueError(f"must be one of {', '.join(repr(a) for a in args)}, "
                             f"got {_shown.repr(value)}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ValueError(f"must be true or false, got {_shown.repr(value)}")
        return value
    if hint in (int, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"must be a number, got {_shown.repr(value)}")
        if hint is int and not isinstance(value, int):
            raise ValueError(f"must be a whole number, got {_shown.repr(value)}")
        if isinstance(value, float) and not math.isfinite(value):  # nan passes every bound
            raise ValueError(f"must be a finite number, got {value}")
        if abs(value) > 1e15:  # beyond any bound, and float() of a huge int overflows
            raise ValueError("must be within -1e15..1e15 (and its own bounds), got a "
                             "number far outside them")
        _check_bounds(value, meta)
        return hint(value)
    if hint is str:
        if not isinstance(value, str):
            raise ValueError(f"must be a string, got {_shown.repr(value)}")
        return _check_text(value)
    if hint is Path:
        if not isinstance(value, str) or not value:
            raise ValueError(f"must be a non-empty path string, got {_shown.repr(value)}")
        p = Path(_check_text(value)).expanduser()
        return p if p.is_absolute() else base_dir / p
    if origin is tuple:
        if not isinstance(value, list) or len(value) != len(args):
            raise ValueError(f"must be a list of {len(args)} numbers, got {_shown.repr(value)}")
        return tuple(_coerce(a, v, meta, base_dir) for a, v in zip(args, value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ValueError(f"must be a table, got {_shown.repr(value)}")
        key_t, val_t = args
        out = {}
        for k, v in value.items():
            try:
                out[_coerce(key_t, k, {}, base_dir)] = _coerce(val_t, v, {}, base_dir)
            except ValueError as exc:
                raise ValueError(f"{_name(k)}: {exc}") from None
        return out
    raise ValueError(f"unsupported type {hint}")  # a schema bug, reported, not crashed on


def _check_text(value: str) -> str:
    if len(value) > MAX_STRING_CHARS:
        raise ValueError(f"must be at most {MAX_STRING_CHARS} characters, got {len(value)}")
    if not value.isprintable():  # NUL breaks every path call later, newlines forge log lines
        raise ValueError(f"must not contain control characters, got {_shown.repr(value)}")
    return value


def _check_bounds(value: float, meta: Any) -> None:
    lo, hi = meta.get("min"), meta.get("max")
    if lo is not None and value < lo:
        raise ValueError(f"must be >= {lo}, got {value}")
    if hi is not None and value > hi:
        raise ValueError(f"must be <= {hi}, got {value}")


def _cross_checks(cfg: Config, path: Path) -> list[str]:
    """Rules that span keys; each message names the key it is about."""
    problems: list[str] = []
    seen: dict[int, str] = {}
    for where, pin in _pins(cfg, path, problems):
        if pin in seen:
            problems.append(f"{path}: {where}: pin {pin} is already used by {seen[pin]}")
        seen.setdefault(pin, where)
    problems.extend(_check_patterns(cfg.indicators, path))
    if cfg.door.open_s > cfg.door.max_open_s:
        problems.append(f"{path}: [door] open_s: must be <= [door] max_open_s "
                        f"({cfg.door.max_open_s}), got {cfg.door.open_s}")
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


def describe(cfg: Config) -> str:
    """The effective config as TOML-like text, for `gate check-config`."""
    lines: list[str] = []
    for name in SECTIONS:
        section = getattr(cfg, name)
        if section is None:
            lines.append(f"# [{name}] not set")
            continue
        lines.append(f"[{name}]")
        for f in dataclasses.fields(section):
            value = getattr(section, f.name)
            if value is None:
                lines.append(f"# {f.name} = (unset)  # {f.metadata.get('doc', '')}")
            else:
                lines.append(f"{f.name} = {_toml_value(value)}  # {f.metadata.get('doc', '')}")
        lines.append("")
    return "\n".join(lines)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
