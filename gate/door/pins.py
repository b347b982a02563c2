"""GPIO access: the pin factory the config names, and claiming the relay with errors a
technician can act on."""

from __future__ import annotations

import importlib
import os
import re
import tempfile
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpiozero.exc import BadPinFactory, GPIOPinInUse
from gpiozero.pins import Factory

from ..config import DoorSection, GpioSection, parse_config
from ..errors import ConfigError, GateError, RelayFault
from .relay import RETRY_PAUSE_S, WRITE_ATTEMPTS, Relay

FACTORIES = {"lgpio": ("lgpio", "LGPIOFactory"), "rpigpio": ("rpigpio", "RPiGPIOFactory"),
             "pigpio": ("pigpio", "PiGPIOFactory"), "native": ("native", "NativeFactory")}


def make_pin_factory(name: str) -> Factory | None:
    """The gpiozero pin factory the config names; None lets gpiozero pick (lgpio on a Pi)."""
    # lgpio makes a notification FIFO in $LG_WD or else the working directory, which is `/`
    # (read-only) under systemd: give it a writable place unless the unit already did.
    os.environ.setdefault("LG_WD", os.environ.get("RUNTIME_DIRECTORY") or tempfile.gettempdir())
    if name == "default":
        return None
    if name == "mock":
        from gpiozero.pins.mock import MockFactory
        return MockFactory()
    module, cls = FACTORIES[name]
    try:
        factory: Factory = getattr(importlib.import_module(f"gpiozero.pins.{module}"), cls)()
    except Exception as exc:
        raise ConfigError([f"[gpio] pin_factory = {name!r} cannot be loaded: {exc}"]) from exc
    return factory


def claim_relay_pin(pin: int, active_high: bool, pin_factory: Factory | None) -> Relay:
    """Claim the relay pin and drive it locked; a first write that raises is tried again
    (WRITE_ATTEMPTS), then RelayFault. Other failures are GateErrors a technician can act on."""
    last: Exception | None = None
    for _attempt in range(WRITE_ATTEMPTS):
        try:
            return Relay(pin, active_high=active_high, pin_factory=pin_factory)
        except BadPinFactory as exc:
            raise GateError(f"no GPIO on this machine ({exc}); on a PC set "
                            '[gpio] pin_factory = "mock"') from exc
        except GPIOPinInUse as exc:
            raise GateError(f"relay pin {pin} is in use ({exc}): stop the daemon first "
                            "(systemctl stop gate)") from exc
        except OSError as exc:  # lgpio: 'GPIO busy' when another process holds the line
            if "busy" in str(exc).lower():
                raise GateError(f"relay pin {pin} cannot be claimed ({exc}); is the daemon "
                                "running? (systemctl stop gate)") from exc
            last = exc
        except Exception as exc:  # the first write raised: try again, then give up loudly
            last = exc
        time.sleep(RETRY_PAUSE_S)
    raise RelayFault(f"relay pin {pin} could not be driven locked after {WRITE_ATTEMPTS} "
                     f"attempts: {last!r}")


@dataclass(frozen=True)
class RelayWiring:
    """What `gate relay-off` needs, and nothing else: which factory, pin and polarity."""

    pin_factory: str = GpioSection.pin_factory
    relay_pin: int = DoorSection.relay_pin
    relay_active_high: bool = DoorSection.relay_active_high


WIRING_KEYS = (("gpio", "pin_factory"), ("door", "relay_pin"), ("door", "relay_active_high"))
_TABLE = re.compile(r"^\s*\[\s*([A-Za-z0-9_.\-]+)\s*\]\s*(#.*)?$")


def read_relay_wiring(path: Path) -> tuple[RelayWiring, list[str]]:
    """The relay's wiring from a config that may be broken anywhere else: each of the three
    keys is validated on its own against the schema; what cannot be read (unreadable file,
    TOML syntax error in that key's line, a bad value) falls back to its default, and each
    fallback is one warning in the returned list. Never raises."""
    warnings: list[str] = []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return RelayWiring(), [f"{path}: cannot read ({exc}); using the default relay wiring"]
    try:
        raw: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        warnings.append(f"{path}: not valid TOML ({exc}); reading the relay keys line by line")
        raw = _scan_lines(text)
    values: dict[str, Any] = {}
    for section, key in WIRING_KEYS:
        table = raw.get(section)
        if not isinstance(table, dict) or key not in table:
            continue
        try:
            parsed = parse_config({section: {key: table[key]}}, path)
        except ConfigError as exc:
            warnings.append(f"{exc.problems[0]}; using the default "
                            f"{getattr(RelayWiring, key)!r}")
            continue
        values[key] = getattr(getattr(parsed, section), key)
    return RelayWiring(**values), warnings


def _scan_lines(text: str) -> dict[str, dict[str, Any]]:
    """A file that is not valid TOML: the wiring keys from lines that parse on their own,
    under the table header they follow."""
    found: dict[str, dict[str, Any]] = {}
    section = ""
    for line in text.splitlines():
        header = _TABLE.match(line)
        if header:
            section = header.group(1)
            continue
        for want_section, key in WIRING_KEYS:
            if section == want_section and line.strip().startswith(key):
                try:
                    one = tomllib.loads(line.strip())
                except tomllib.TOMLDecodeError:
                    continue
                if key in one:
                    found.setdefault(section, {})[key] = one[key]
    return found
