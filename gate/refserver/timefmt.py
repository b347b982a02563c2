"""RFC 3339 UTC time parsing and formatting shared by the reference server's parts."""

from __future__ import annotations

from datetime import datetime, timezone


def utcnow() -> datetime:
    """The current time as an aware UTC datetime (the default clock)."""
    return datetime.now(timezone.utc)


def parse_time(text: str, what: str = "time") -> datetime:
    """Parse an RFC 3339 string into an aware UTC datetime.

    A time without an offset is refused rather than guessed: a validity window read as
    local time on one machine and UTC on another would open a door an hour early.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{what}: expected an RFC 3339 string, got {text!r}")
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{what}: {text!r} is not an RFC 3339 time "
                         "(example: 2025-01-31T23:59:59Z)") from None
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what}: {text!r} has no timezone; add Z for UTC "
                         "(example: 2025-01-31T23:59:59Z)")
    return value.astimezone(timezone.utc)


def format_time(value: datetime) -> str:
    """Format an aware datetime as RFC 3339 UTC with a trailing Z."""
    if value.tzinfo is None:
        raise ValueError("refusing to format a naive datetime as UTC")
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def normalize_time(value: datetime | str | None, what: str = "time") -> str | None:
    """Accept a datetime or an RFC 3339 string (or None) and return the canonical string."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return format_time(value)
    return format_time(parse_time(value, what))
