"""Reading a config file: size and encoding limits, TOML, then each key checked against
the schema; every problem is collected into one ConfigError naming file, key and reason."""

from __future__ import annotations

import dataclasses
import math
import os
import stat
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, Literal

from ..errors import ConfigError
from .checks import cross_checks
from .schema import (
    MAX_CONFIG_BYTES,
    MAX_STRING_CHARS,
    SECTIONS,
    Config,
    _name,
    _section_class,
    _shown,
)


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
    problems.extend(cross_checks(cfg, path))
    if problems:
        raise ConfigError(problems)
    return cfg


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


