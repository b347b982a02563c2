"""GPIO access: the pin factory the config names, and claiming the relay with errors a
technician can act on."""

from __future__ import annotations

import importlib
import os
import tempfile

from gpiozero.exc import BadPinFactory, GPIOPinInUse
from gpiozero.pins import Factory

from .config import Config
from .door import Relay
from .errors import GateError

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
        raise GateError(f"[gpio] pin_factory = {name!r} cannot be loaded: {exc}") from exc
    return factory


def claim_relay(cfg: Config, pin_factory: Factory | None) -> Relay:
    """The relay, driven locked the moment its pin is claimed."""
    pin = cfg.door.relay_pin
    try:
        return Relay(pin, active_high=cfg.door.relay_active_high, pin_factory=pin_factory)
    except BadPinFactory as exc:
        raise GateError(f"no GPIO on this machine ({exc}); on a PC set "
                        '[gpio] pin_factory = "mock"') from exc
    except GPIOPinInUse as exc:
        raise GateError(f"relay pin {pin} is in use ({exc}): stop the daemon first "
                        "(systemctl stop gate)") from exc
    except OSError as exc:  # lgpio: 'GPIO busy' when another process holds the line
        raise GateError(f"relay pin {pin} cannot be claimed ({exc}); is the daemon running? "
                        "(systemctl stop gate)") from exc
