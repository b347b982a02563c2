"""What a reload changes: the keys that differ, split by the schema into live and restart."""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Any

from .schema import SECTIONS, Config, _section_class


@dataclass(frozen=True)
class Changes:
    """Keys named `section.key` (or `section` for an optional section added or removed)."""

    applied: tuple[str, ...]
    restart_needed: tuple[str, ...]


def section_class(name: str) -> type:
    """The dataclass of a section, unwrapping `X | None`."""
    return _section_class(typing.get_type_hints(Config)[name])


def needs_restart(section: str, key: str | None = None) -> bool:
    """From the schema: True when the key (or, for a whole section, any of its keys) waits
    for a restart."""
    fields = dataclasses.fields(section_class(section))
    return any(f.metadata.get("restart", False) for f in fields
               if key is None or f.name == key)


def diff(old: Config, new: Config) -> Changes:
    applied: list[str] = []
    waiting: list[str] = []
    for name in SECTIONS:
        before, after = getattr(old, name), getattr(new, name)
        if before == after:
            continue
        if before is None or after is None:  # a whole optional section added or removed
            (waiting if needs_restart(name) else applied).append(name)
            continue
        for f in dataclasses.fields(before):
            if getattr(before, f.name) != getattr(after, f.name):
                key = f"{name}.{f.name}"
                (waiting if f.metadata.get("restart", False) else applied).append(key)
    return Changes(tuple(applied), tuple(waiting))


def effective(old: Config, new: Config, changes: Changes) -> Config:
    """`new` with every restart-needed key kept as it runs, so the config in use always
    describes the pins, files and sockets actually open."""
    sections: dict[str, Any] = {}
    for name in SECTIONS:
        keep = [k.partition(".")[2] for k in changes.restart_needed
                if k == name or k.startswith(name + ".")]
        if not keep:
            continue
        if keep == [""]:
            sections[name] = getattr(old, name)
        else:
            sections[name] = dataclasses.replace(
                getattr(new, name), **{k: getattr(getattr(old, name), k) for k in keep})
    return dataclasses.replace(new, **sections)
