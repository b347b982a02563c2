"""RFC 3339 UTC times: parsing (a time without an offset is refused) and formatting."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    """The current time, aware UTC: the default clock."""
    return datetime.now(timezone.utc)


def parse_time(text: str, what: str = "time") -> datetime:
    """An RFC 3339 string as aware UTC; a naive time would be read differently per machine."""
    try:
        value = datetime.fromisoformat(text.strip())
    except (ValueError, AttributeError):
        raise ValueError(f"{what}: {text!r} is not an RFC 3339 time "
                         "(example: 2025-01-31T23:59:59Z)") from None
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what}: {text!r} has no timezone; add Z for UTC")
    return value.astimezone(timezone.utc)


def as_utc(value: datetime) -> datetime:
    """Databases hand back naive datetimes (SQLite) or aware ones (PostgreSQL); make both UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def format_time(value: datetime) -> str:
    """RFC 3339 UTC with a trailing Z, whole seconds."""
    return as_utc(value).replace(microsecond=0).isoformat().replace("+00:00", "Z")
