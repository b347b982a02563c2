"""The typed config schema (TOML) and its validation: every key has a default, a description
and bounds, and every error names the file, the key and the problem."""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .errors import ConfigError

DEFAULT_CONFIG_PATH = Path("/etc/gate/gate.toml")
Verdict = Literal["grant", "deny", "staff"]


def opt(default: Any, doc: str, *, min: float | None = None, max: float | None = None,
        default_factory: Any = None) -> Any:
    """A schema field: its default, a one-line description and optional numeric bounds."""
    meta = {"doc": doc, "min": min, "max": max}
    if default_factory is not None:
        return field(default_factory=default_factory, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class GateSection:
    id: str = opt("gate", "names this gate in the journal and to the server")
    state_dir: Path = opt(Path("/var/lib/gate"), "credential cache, journal and status file")
    log_level: Literal["debug", "info", "warning", "error"] = opt("info", "log verbosity")


@dataclass(frozen=True)
class CameraSection:
    source: Literal["picamera2", "files"] = opt("picamera2", "picamera2 on a Pi; files replays images")
    size: tuple[int, int] = opt((640, 480), "luma stream size [width, height]", min=16, max=4096)
    fps: float = opt(15.0, "frames per second asked of the camera (files: pacing)", min=0.1, max=120)
    path: Path = opt(Path("frames"), "files: a glob of PNG/JPEG images or a directory")
    loop: bool = opt(False, "files: at the end start over (true) or stop the daemon, exit 0 (false)")
    stall_timeout_s: float = opt(2.0, "no frame for this long ends the daemon non-zero", min=0.1, max=60)
    autofocus: bool = opt(True, "picamera2: continuous autofocus where the camera has it")


@dataclass(frozen=True)
class DecoderSection:
    backend: Literal["zxing", "pyzbar"] = opt("zxing", "QR decoder library")
    repeat_guard_s: float = opt(3.0, "a code held in view counts again only after this long",
                                min=0.0, max=3600)
    leave_s: float = opt(0.5, "a code unseen for this long has left the view", min=0.0, max=60)


@dataclass(frozen=True)
class GpioSection:
    pin_factory: Literal["default", "mock", "lgpio", "rpigpio", "pigpio", "native"] = opt(
        "default", "gpiozero pin factory; mock runs on any machine")


@dataclass(frozen=True)
class DoorSection:
    relay_pin: int = opt(17, "BCM number of the relay output", min=0, max=53)
    relay_active_high: bool = opt(True, "false for relay boards that switch on a LOW line")
    open_s: float = opt(4.0, "how long a grant releases the door", min=0.1, max=600)
    granted_led_pin: int | None = opt(None, "optional green LED (BCM)", min=0, max=53)
    denied_led_pin: int | None = opt(None, "optional red LED (BCM)", min=0, max=53)
    buzzer_pin: int | None = opt(None, "optional buzzer (BCM)", min=0, max=53)


@dataclass(frozen=True)
class ListSection:
    path: Path = opt(Path("/etc/gate/allowlist.csv"),
                     "technician's allowlist CSV: code|code_sha256,label,valid_from,valid_until")
    watch_interval_s: float = opt(2.0, "how often the file is checked for changes", min=0.1, max=3600)


@dataclass(frozen=True)
class ServerSection:
    url: str = opt("", "central server base URL (https://, or http:// on loopback only)")
    token_file: Path = opt(Path("/etc/gate/token"), "file holding the bearer token")
    timeout_s: float = opt(0.8, "budget for one online verification", min=0.05, max=30)
    sync_interval_s: float = opt(60.0, "credential sync period", min=1, max=86400)
    ca_file: Path | None = opt(None, "CA bundle to trust instead of the system's")
    client_cert: Path | None = opt(None, "client certificate (PEM) for mutual TLS")
    client_key: Path | None = opt(None, "client key (PEM, unencrypted) for mutual TLS")


def _default_status() -> dict[str, str]:
    return {"green": "grant", "yellow": "staff", "red": "deny", "black": "deny"}


@dataclass(frozen=True)
class PolicySection:
    offline: Literal["cache", "deny"] = opt("cache", "an unreachable server: use the cache, or deny")
    max_cache_age_s: float = opt(604800.0, "a cache not synced for this long no longer grants", min=0)
    status: dict[str, Verdict] = opt(None, "server colour -> verdict", default_factory=_default_status)


@dataclass(frozen=True)
class Config:
    gate: GateSection = field(default_factory=GateSection)
    camera: CameraSection = field(default_factory=CameraSection)
    decoder: DecoderSection = field(default_factory=DecoderSection)
    gpio: GpioSection = field(default_factory=GpioSection)
    door: DoorSection = field(default_factory=DoorSection)
    list: ListSection = field(default_factory=ListSection)
    server: ServerSection | None = None
    policy: PolicySection = field(default_factory=PolicySection)
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


SECTIONS: dict[str, type] = {f.name: f.type for f in dataclasses.fields(Config)
                             if f.name != "source_path"}


def load_config(path: Path | str) -> Config:
    """Read and validate a TOML config; raise ConfigError listing every problem found."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError([f"{path}: file not found"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}: cannot read: {exc}"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML: {exc}"]) from None
    return parse_config(raw, path)


def parse_config(raw: dict[str, Any], path: Path) -> Config:
    problems: list[str] = []
    base_dir = path.resolve().parent
    hints = typing.get_type_hints(Config)
    sections: dict[str, Any] = {}
    for name, value in raw.items():
        if name not in SECTIONS:
            problems.append(f"{path}: [{name}]: unknown section (known: {', '.join(SECTIONS)})")
            continue
        if not isinstance(value, dict):
            problems.append(f"{path}: [{name}]: must be a table")
            continue
        cls = _section_class(hints[name])
        sections[name] = _parse_section(cls, name, value, path, base_dir, problems)
    cfg = Config(**{k: v for k, v in sections.items() if v is not None}, source_path=path)
    problems.extend(_cross_checks(cfg, path))
    if problems:
        raise ConfigError(problems)
    return cfg


def _section_class(hint: Any) -> type:
    if isinstance(hint, types.UnionType):  # ServerSection | None
        return next(a for a in typing.get_args(hint) if a is not type(None))
    return typing.cast(type, hint)


def _parse_section(cls: type, section: str, raw: dict[str, Any], path: Path, base_dir: Path,
                   problems: list[str]) -> Any:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        where = f"{path}: [{section}] {key}"
        if key not in fields:
            problems.append(f"{where}: unknown key (known: {', '.join(fields)})")
            continue
        try:
            values[key] = _coerce(hints[key], value, fields[key].metadata, base_dir)
        except ValueError as exc:
            problems.append(f"{where}: {exc}")
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
        if value not in args:
            raise ValueError(f"must be one of {', '.join(repr(a) for a in args)}, got {value!r}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ValueError(f"must be true or false, got {value!r}")
        return value
    if hint in (int, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"must be a number, got {value!r}")
        if hint is int and not isinstance(value, int):
            raise ValueError(f"must be a whole number, got {value!r}")
        _check_bounds(value, meta)
        return hint(value)
    if hint is str:
        if not isinstance(value, str):
            raise ValueError(f"must be a string, got {value!r}")
        return value
    if hint is Path:
        if not isinstance(value, str) or not value:
            raise ValueError(f"must be a non-empty path string, got {value!r}")
        p = Path(value).expanduser()
        return p if p.is_absolute() else base_dir / p
    if origin is tuple:
        if not isinstance(value, list) or len(value) != len(args):
            raise ValueError(f"must be a list of {len(args)} numbers, got {value!r}")
        return tuple(_coerce(a, v, meta, base_dir) for a, v in zip(args, value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ValueError(f"must be a table, got {value!r}")
        key_t, val_t = args
        out = {}
        for k, v in value.items():
            try:
                out[_coerce(key_t, k, {}, base_dir)] = _coerce(val_t, v, {}, base_dir)
            except ValueError as exc:
                raise ValueError(f"{k}: {exc}") from None
        return out
    raise ValueError(f"unsupported type {hint}")  # a schema bug, reported, not crashed on


def _check_bounds(value: float, meta: Any) -> None:
    lo, hi = meta.get("min"), meta.get("max")
    if lo is not None and value < lo:
        raise ValueError(f"must be >= {lo}, got {value}")
    if hi is not None and value > hi:
        raise ValueError(f"must be <= {hi}, got {value}")


def _cross_checks(cfg: Config, path: Path) -> list[str]:
    """Rules that span keys; each message names the key it is about."""
    problems: list[str] = []
    pins = {"relay_pin": cfg.door.relay_pin, "granted_led_pin": cfg.door.granted_led_pin,
            "denied_led_pin": cfg.door.denied_led_pin, "buzzer_pin": cfg.door.buzzer_pin}
    seen: dict[int, str] = {}
    for key, pin in pins.items():
        if pin is None:
            continue
        if pin in seen:
            problems.append(f"{path}: [door] {key}: pin {pin} is already used by {seen[pin]}")
        seen[pin] = key
    if cfg.server is not None:
        problems.extend(_check_server_url(cfg.server.url, path))
    return problems


def _check_server_url(url: str, path: Path) -> list[str]:
    from urllib.parse import urlsplit
    import ipaddress

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
        return [f"{where}: plain http:// is allowed only for a loopback address, got {url!r}"]
    return [f"{where}: must be an https:// URL, got {url!r}"]


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
