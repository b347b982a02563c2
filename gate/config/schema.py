"""The config schema: every section and key with its default, description, bounds and
whether a reload applies it live; the Config they make up."""

from __future__ import annotations

import dataclasses
import reprlib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..contracts import Verdict as Verdict

DEFAULT_CONFIG_PATH = Path("/etc/gate/gate.toml")
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
                                   "server knows it from the token; set it to count offline) "
                                   "and signed passes (unset: the site /v1/keys names; a gate "
                                   "without a server must set it)")
    direction: Literal["in", "out", "both"] = restart_opt(
        "in", "where this door leads, for occupancy: in (entries count +1), out (exits -1), "
        "both (the server decides per pass; offline counted as in)")
    timezone: str = opt("UTC", "the site's IANA time zone (e.g. Europe/Berlin): signed passes' "
                        "weekly schedules are read in it")


@dataclass(frozen=True)
class CameraSection:
    source: Literal["picamera2", "files"] = restart_opt("picamera2", "picamera2 on a Pi; files replays images")
    size: tuple[int, int] = restart_opt((640, 480), "luma stream size [width, height]", min=16, max=4096)
    fps: float = restart_opt(15.0, "frames per second asked of the camera (files: pacing)", min=0.1, max=120)
    path: Path = restart_opt(Path("frames"), "files: a glob of PNG/JPEG images or a directory")
    loop: bool = restart_opt(False, "files: at the end start over (true) or stop the daemon, exit 0 (false)")
    stall_timeout_s: float = restart_opt(2.0, "no frame for this long ends the daemon non-zero", min=0.1, max=60)
    autofocus: bool = restart_opt(True, "picamera2: continuous autofocus where the camera has it")
    main_size: tuple[int, int] | None = restart_opt(
        None, "full-resolution main stream [width, height] for second looks at codes the lores "
        "pass missed (e.g. [2304, 1296] on Camera Module 3); files: frames larger than size are "
        "the main stream, downscaled to size for lores; off when absent", min=16, max=8192)
    metering: Literal["centre", "spot", "matrix"] = restart_opt(
        "centre", "picamera2 AeMeteringMode: spot for phone screens in a dark entrance")
    exposure_value: float = restart_opt(0.0, "picamera2 ExposureValue in stops: negative for "
                                        "bright phone screens", min=-8.0, max=8.0)
    lens_position: float | None = restart_opt(
        None, "picamera2 fixed focus in dioptres (1 / metres: 6.7 for 15 cm) with AfMode manual, "
        "instead of autofocus; only where the camera has a lens motor", min=0.0, max=32.0)
    flicker_hz: Literal[0, 50, 60] = restart_opt(
        0, "mains frequency to cancel light flicker at (AeFlickerMode manual); 0 leaves it off")
    record_dir: Path | None = restart_opt(
        None, "opt-in: keep frames that held a code or a code-like region here (mode 0600) to "
        "replay against a new config; they show passes, treat them as secret")
    record_keep: int = restart_opt(500, "record_dir: the newest this many frames are kept",
                                   min=1, max=100000)


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
class PassesSection:
    keys_file: Path | None = restart_opt(None, "issuer public keys (gate-server keys export) for "
                                         "gates without a server, or until the first key sync")
    max_key_age_s: float = opt(604800.0, "keys not synced from the server for this long deny "
                               "every signed pass keys_stale; 0: never (a keys_file never ages)",
                               min=0, max=10 * 365 * 86400)
    rotation_window_steps: int = opt(1, "rotating passes: 30 s steps accepted either side of "
                                     "the current one (clock skew, a slow scan)", min=0, max=10)


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
    passes: PassesSection = field(default_factory=PassesSection)
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


def _name(name: str) -> str:
    """A section or key name as written, cut short and without control characters."""
    return name if len(name) <= 60 and name.isprintable() else _shown.repr(name)


def _section_class(hint: Any) -> type:
    if isinstance(hint, types.UnionType):  # ServerSection | None
        return typing.cast(type, next(a for a in typing.get_args(hint) if a is not type(None)))
    return typing.cast(type, hint)


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
