"""Values that cross module and wire boundaries, defined once: the verdicts a decision has."""

from __future__ import annotations

import typing
from typing import Literal

# grant: open; deny: stay shut; staff: stay shut, a person must check. Used by the config
# ([policy.status] values), the verifiers, the server client's parse and the fleet bus.
Verdict = Literal["grant", "deny", "staff"]
VERDICTS: tuple[Verdict, ...] = typing.get_args(Verdict)

# Why a decision went as it did: every word the gate itself writes (DESIGN's journal
# contract, plus lockdown, journal_error and clock_invalid, which the code emits too). A reason
# from the server is kept as the server wrote it (the journal must show what the server
# said), so a decision's `reason` is typed `str` and checked with `is_reason` where the gate
# made it up.
Reason = Literal[
    "ok", "unknown", "expired", "not_yet_valid", "revoked", "offline", "cache_stale",
    "bad_format", "bad_signature", "unknown_key", "keys_stale", "wrong_site",
    "outside_schedule", "stale_code", "clock_invalid", "occupancy_full", "anti_passback",
    "locked_out", "lockdown", "journal_error", "exit_request", "staff_override"]
REASONS: tuple[Reason, ...] = typing.get_args(Reason)
STATUS_PREFIX = "status_"  # status_<colour>: a server status made the verdict stricter


def status_reason(colour: str) -> str:
    """The reason for a verdict made stricter by [policy.status]: status_<colour>."""
    return STATUS_PREFIX + colour


def is_reason(text: str) -> bool:
    """A reason the gate writes itself: one of REASONS or status_<colour>."""
    return text in REASONS or (text.startswith(STATUS_PREFIX) and len(text) > len(STATUS_PREFIX))


# Who decided: a verifier (server, cache, list, pass, policy, lockout; none when nobody knew
# the code) or a person or command (exit_button, staff_button, remote). DESIGN names the
# button sources exit_request and staff_override, which the code writes as the *reason* of
# a button grant (source exit_button / staff_button): both kept, so old journals still type.
Source = Literal["server", "cache", "list", "pass", "policy", "none", "lockout",
                 "exit_button", "staff_button", "remote", "exit_request", "staff_override"]
SOURCES: tuple[Source, ...] = typing.get_args(Source)
