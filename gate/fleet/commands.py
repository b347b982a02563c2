"""Remote commands on the gate's MQTT topic: the strict JSON schema and the replay guard.

A command is one small JSON object, e.g. {"v": 1, "id": "a1b2", "ts": 1767225600.5,
"cmd": "unlock"}; `lockdown` adds "state": "on" | "off". Anything else (other keys, wrong
types, nesting, over MAX_BYTES, not UTF-8, retained, too old, from the future, a repeated id)
is refused with a reason word that is counted; it never raises.

Clock rule: `ts` is the sender's wall clock (epoch seconds). The gate accepts a command only
while |gate clock - ts| <= max_age_s, so both clocks must be NTP-synced to within that
window. A gate whose clock is off by more refuses every command ("stale"/"future"): it fails
closed, never open. Ids are remembered on the monotonic clock for 2 * max_age_s, so a jump of
the wall clock cannot make a command seen once acceptable again within that time.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

MAX_BYTES = 512
ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
CommandName = Literal["unlock", "lock", "lockdown", "sync"]
COMMANDS: tuple[str, ...] = ("unlock", "lock", "lockdown", "sync")
REFUSALS = ("too_big", "not_utf8", "not_json", "not_object", "bad_field", "unknown_key",
            "retained", "stale", "future", "replay", "flood")


@dataclass(frozen=True)
class Command:
    id: str
    ts: float
    cmd: CommandName
    state: Literal["on", "off"] | None = None  # lockdown only


class Refused(Exception):
    """A command the gate ignores; `reason` is one of REFUSALS."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse_command(payload: bytes) -> Command:
    """The command in `payload`, or Refused naming what is wrong with it."""
    if len(payload) > MAX_BYTES:
        raise Refused("too_big")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused("not_utf8") from None
    try:
        # No nesting is allowed, so a deep document is refused below; the size cap keeps
        # the parser's own recursion far from any limit.
        obj = json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        raise Refused("not_json") from None
    if not isinstance(obj, dict):
        raise Refused("not_object")
    allowed = {"v", "id", "ts", "cmd"} | ({"state"} if obj.get("cmd") == "lockdown" else set())
    if set(obj) - allowed:
        raise Refused("unknown_key")
    v, cid, ts, cmd = obj.get("v"), obj.get("id"), obj.get("ts"), obj.get("cmd")
    if type(v) is not int or v != 1:
        raise Refused("bad_field")
    if not isinstance(cid, str) or not ID_RE.match(cid):
        raise Refused("bad_field")
    if isinstance(ts, bool) or not isinstance(ts, (int, float)) or not math.isfinite(ts):
        raise Refused("bad_field")
    if cmd not in COMMANDS:
        raise Refused("bad_field")
    state = obj.get("state")
    if cmd == "lockdown" and state not in ("on", "off"):
        raise Refused("bad_field")
    return Command(id=cid, ts=float(ts), cmd=cmd, state=state)


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")  # NaN, Infinity


class ReplayGuard:
    """Accepts a command once, and only while it is fresh by the gate's clock."""

    def __init__(self, max_age_s: float, capacity: int = 1024,
                 wall: Callable[[], float] = time.time,
                 mono: Callable[[], float] = time.monotonic) -> None:
        self.max_age_s = max_age_s
        self.capacity = capacity
        self._wall, self._mono = wall, mono
        self._seen: OrderedDict[str, float] = OrderedDict()  # id -> monotonic expiry

    def admit(self, command: Command, retained: bool) -> None:
        """Return if `command` may run; raise Refused otherwise."""
        if retained:  # a retained command would run again at every reconnect
            raise Refused("retained")
        age = self._wall() - command.ts
        if age > self.max_age_s:
            raise Refused("stale")
        if age < -self.max_age_s:
            raise Refused("future")
        now = self._mono()
        while self._seen and next(iter(self._seen.values())) <= now:
            self._seen.popitem(last=False)
        if command.id in self._seen:
            raise Refused("replay")
        if len(self._seen) >= self.capacity:
            # Evicting a live id would let it replay: refuse instead (only an authorised
            # publisher can get here, so this is a misbehaving one).
            raise Refused("flood")
        self._seen[command.id] = now + 2 * self.max_age_s
