"""The checks `run` and `check-config` share: every file the config names, before a pin."""

from __future__ import annotations

from dataclasses import dataclass

from gpiozero.pins import Factory

from .central.client import read_token
from .config import Config
from .door.pins import make_pin_factory
from .errors import ConfigError
from .passes.keys import KeysFileError, load_keys_file
from .verify.credentials import Problems, iter_allowlist


@dataclass(frozen=True)
class Preflight:
    """What the checks read, for `run` to use: the pin factory and the server token."""

    pin_factory: Factory | None
    token: str | None
    credentials: int       # good allowlist rows (duplicates counted)
    problems: int          # bad allowlist rows, skipped


def preflight(cfg: Config, pin_factory: Factory | None = None) -> Preflight:
    """Read the token file and any broker password file (their modes too), the signed-pass
    keys file, the allowlist, then load the pin factory; no pin is claimed (run reads the
    list again, streaming, once the relay is locked). ConfigError or AllowlistError (both
    exit 2) on the first that fails. `pin_factory` given: used as it is (tests pass a
    MockFactory)."""
    token = read_token(cfg.server.token_file) if cfg.server is not None else None
    if cfg.mqtt is not None and cfg.mqtt.password_file is not None:
        read_token(cfg.mqtt.password_file)  # checked here; the fleet bus reads it at start
    if cfg.passes.keys_file is not None:
        try:
            load_keys_file(cfg.passes.keys_file)
        except KeysFileError as exc:
            raise ConfigError([f"[passes] keys_file: {p}" for p in exc.problems]) from None
    problems = Problems()
    credentials = sum(1 for _ in iter_allowlist(cfg.list.path, problems))
    factory = pin_factory if pin_factory is not None else make_pin_factory(cfg.gpio.pin_factory)
    return Preflight(factory, token, credentials, problems.total)
