"""Pass claims: the CBOR map a pass signs, with integer keys, and its strict parser."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cbor2

from .errors import PassError

# Claim keys (the contract; DESIGN "Pass format v1"). Small integers: one CBOR byte each.
# Key 7 (a separate rot flag) is retired: rot travels as a bit of the kind, which saves two
# bytes and with them the room a rotating scheduled pass needs in a version-9 QR code.
ID, SITES, KIND, VALID_FROM, VALID_UNTIL, SCHEDULE = 1, 2, 3, 4, 5, 6
KNOWN = frozenset({ID, SITES, KIND, VALID_FROM, VALID_UNTIL, SCHEDULE})
REQUIRED = (ID, SITES, KIND, VALID_UNTIL)

KINDS = ("staff", "visitor", "contractor")  # encoded as their index
ROT_FLAG = 4              # kind code = index | ROT_FLAG for a rotating pass (one CBOR byte)
ID_BYTES = (4, 16)        # inclusive bounds of a pass id's length
MAX_SITES = 8
MAX_SITE_CHARS = 32
MAX_WINDOWS = 8
MAX_EPOCH = 2**40         # far beyond any real date, small enough for any float or int64
MINUTES_PER_DAY = 1440


@dataclass(frozen=True)
class Window:
    """One weekly window in the site's time zone: on each weekday in ``days`` (bit 0 =
    Monday ... bit 6 = Sunday) from ``start`` to ``end`` (minutes after midnight). ``end``
    at or before ``start`` means the window runs past midnight into the next day."""

    days: int
    start: int
    end: int

    def __post_init__(self) -> None:
        if not 1 <= self.days <= 0x7F:
            raise ValueError(f"weekday mask {self.days} is not 1..127")
        if not 0 <= self.start < MINUTES_PER_DAY:
            raise ValueError(f"start minute {self.start} is not 0..1439")
        if not 1 <= self.end <= MINUTES_PER_DAY:
            raise ValueError(f"end minute {self.end} is not 1..1440")
        if self.start == self.end:
            raise ValueError("a window cannot start and end at the same minute")


@dataclass(frozen=True)
class Claims:
    """What a pass says: who-less by design (no holder name travels in the code)."""

    pass_id: bytes
    sites: tuple[str, ...]
    kind: str
    valid_from: int | None   # None: valid from signing (the claim is left out: 6 bytes)
    valid_until: int
    schedule: tuple[Window, ...] = field(default=())
    rotating: bool = False

    def __post_init__(self) -> None:
        if not ID_BYTES[0] <= len(self.pass_id) <= ID_BYTES[1]:
            raise ValueError(f"pass id must be {ID_BYTES[0]}..{ID_BYTES[1]} bytes")
        if not 1 <= len(self.sites) <= MAX_SITES:
            raise ValueError(f"a pass names 1..{MAX_SITES} sites")
        for site in self.sites:
            if not 1 <= len(site) <= MAX_SITE_CHARS or not site.isprintable():
                raise ValueError(f"site {site!r} must be 1..{MAX_SITE_CHARS} printable characters")
        if self.kind not in KINDS:
            raise ValueError(f"kind {self.kind!r} is not one of {', '.join(KINDS)}")
        start = 0 if self.valid_from is None else self.valid_from
        if not 0 <= start < self.valid_until <= MAX_EPOCH:
            raise ValueError("need 0 <= valid_from < valid_until (epoch seconds)")
        if len(self.schedule) > MAX_WINDOWS:
            raise ValueError(f"at most {MAX_WINDOWS} schedule windows")

    @property
    def id_text(self) -> str:
        """The pass id as the journal and the revocation list carry it (lowercase hex)."""
        return self.pass_id.hex()


def encode_claims(claims: Claims) -> bytes:
    """The compact CBOR map: a single site as a text string, optional claims left out."""
    body: dict[int, Any] = {
        ID: claims.pass_id,
        SITES: claims.sites[0] if len(claims.sites) == 1 else list(claims.sites),
        KIND: KINDS.index(claims.kind) | (ROT_FLAG if claims.rotating else 0),
    }
    if claims.valid_from is not None:
        body[VALID_FROM] = claims.valid_from
    body[VALID_UNTIL] = claims.valid_until
    if claims.schedule:
        # flat [days, start, end, days, start, end, ...]: one CBOR byte less per window
        body[SCHEDULE] = [n for w in claims.schedule for n in (w.days, w.start, w.end)]
    return cbor2.dumps(body)


def _int(value: object, what: str, low: int, high: int) -> int:
    # bool is an int in Python; CBOR true/false must not pass for 1/0
    if type(value) is not int or not low <= value <= high:
        raise PassError("bad_format", f"{what} must be an integer in {low}..{high}")
    return value


def _sites(value: object) -> tuple[str, ...]:
    items = [value] if type(value) is str else value
    if type(items) is not list or not 1 <= len(items) <= MAX_SITES:
        raise PassError("bad_format", f"sites must be a text or a list of 1..{MAX_SITES} texts")
    for item in items:
        if type(item) is not str or not 1 <= len(item) <= MAX_SITE_CHARS or not item.isprintable():
            raise PassError("bad_format", f"a site must be 1..{MAX_SITE_CHARS} printable characters")
    return tuple(items)


def _schedule(value: object) -> tuple[Window, ...]:
    if type(value) is not list or not 1 <= len(value) <= 3 * MAX_WINDOWS or len(value) % 3:
        raise PassError("bad_format",
                        f"schedule must be a flat list of 1..{MAX_WINDOWS} [days, start, end]")
    windows = []
    for i in range(0, len(value), 3):
        days = _int(value[i], "weekday mask", 1, 0x7F)
        start = _int(value[i + 1], "window start", 0, MINUTES_PER_DAY - 1)
        end = _int(value[i + 2], "window end", 1, MINUTES_PER_DAY)
        if start == end:
            raise PassError("bad_format", "a schedule window starts and ends at the same minute")
        windows.append(Window(days, start, end))
    return tuple(windows)


def parse_claims(body: object) -> Claims:
    """Claims from a decoded CBOR value; anything but the exact schema is a PassError.

    Unknown claims are refused, not skipped: a claim the gate does not understand may be a
    restriction, and ignoring a restriction would be a grant the issuer did not make."""
    if type(body) is not dict:
        raise PassError("bad_format", "claims are not a CBOR map")
    unknown = [k for k in body if type(k) is not int or k not in KNOWN]
    if unknown:
        raise PassError("bad_format", f"unknown claim {unknown[0]!r}")
    missing = [k for k in REQUIRED if k not in body]
    if missing:
        raise PassError("bad_format", f"missing claim {missing[0]}")
    pass_id = body[ID]
    if type(pass_id) is not bytes or not ID_BYTES[0] <= len(pass_id) <= ID_BYTES[1]:
        raise PassError("bad_format", f"pass id must be {ID_BYTES[0]}..{ID_BYTES[1]} bytes")
    valid_from = (_int(body[VALID_FROM], "valid_from", 0, MAX_EPOCH)
                  if VALID_FROM in body else None)
    valid_until = _int(body[VALID_UNTIL], "valid_until", 0, MAX_EPOCH)
    if valid_from is not None and valid_until <= valid_from:
        raise PassError("bad_format", "valid_until is not after valid_from")
    code = _int(body[KIND], "kind", 0, ROT_FLAG | (len(KINDS) - 1))
    if code & ~ROT_FLAG >= len(KINDS):
        raise PassError("bad_format", f"kind {code} is not a known kind")
    return Claims(pass_id=pass_id, sites=_sites(body[SITES]), kind=KINDS[code & ~ROT_FLAG],
                  valid_from=valid_from, valid_until=valid_until,
                  schedule=_schedule(body[SCHEDULE]) if SCHEDULE in body else (),
                  rotating=bool(code & ROT_FLAG))
