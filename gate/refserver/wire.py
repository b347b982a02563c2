"""Validation of the v1 request bodies: turns parsed JSON into typed requests or a clear 400."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from .timefmt import parse_time

MAX_GATE_ID = 128
MAX_CODE = 8192        # a QR code holds at most about 7 kB, so anything longer is not a scan
MAX_EVENT_ID = 256
MAX_EVENTS = 10_000    # per upload; the body size limit usually bites first


class BadRequest(ValueError):
    """A request body the server refuses; the message is sent to the client as-is."""


@dataclass(frozen=True)
class VerifyRequest:
    gate: str
    code: bytes        # the exact payload bytes
    scanned_at: str


@dataclass(frozen=True)
class EventsUpload:
    gate: str
    events: list[dict[str, Any]]


def _reject_constant(name: str) -> Any:
    # NaN and Infinity are not JSON; Python would accept them silently.
    raise BadRequest(f"body is not valid JSON: {name} is not allowed")


def parse_json(raw: bytes) -> dict[str, Any]:
    """Parse a request body that must be one JSON object."""
    try:
        value = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise BadRequest("body is not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise BadRequest(f"body is not valid JSON: {exc.msg} at line {exc.lineno} "
                         f"column {exc.colno}") from None
    if not isinstance(value, dict):
        raise BadRequest(f"body must be a JSON object, got {type(value).__name__}")
    return value


def _string(obj: dict[str, Any], key: str, where: str, limit: int) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise BadRequest(f"{where}{key}: required non-empty string")
    if len(value) > limit:
        raise BadRequest(f"{where}{key}: longer than {limit} characters")
    return value


def _time(obj: dict[str, Any], key: str, where: str) -> str:
    value = _string(obj, key, where, 64)
    try:
        parse_time(value, f"{where}{key}")
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    return value


def _code(body: dict[str, Any]) -> bytes:
    """`code_b64` (standard base64 of the exact bytes) when present, and then `code` is
    ignored; otherwise `code` as UTF-8 (v1 gates). A gate sends no `code` for bytes that are
    not UTF-8, so nothing lossy is ever looked up."""
    if "code_b64" not in body:
        return _string(body, "code", "", MAX_CODE).encode("utf-8")
    text = _string(body, "code_b64", "", (MAX_CODE + 2) // 3 * 4)
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest("code_b64: not standard base64") from None
    if not raw:
        raise BadRequest("code_b64: empty code")
    return raw


def parse_verify(body: dict[str, Any]) -> VerifyRequest:
    """POST /v1/verify: {"gate", "code_b64" and/or "code", "scanned_at"}."""
    return VerifyRequest(gate=_string(body, "gate", "", MAX_GATE_ID), code=_code(body),
                         scanned_at=_time(body, "scanned_at", ""))


def parse_events(body: dict[str, Any]) -> EventsUpload:
    """POST /v1/events: {"gate", "events": [event, ...]}; one bad event refuses the batch.

    Refusing the whole batch (rather than storing the good part) keeps the answer simple for
    the gate: a 2xx means every event in it is stored, which is what lets it mark them sent.
    """
    gate = _string(body, "gate", "", MAX_GATE_ID)
    events = body.get("events")
    if not isinstance(events, list):
        raise BadRequest("events: required array of event objects")
    if len(events) > MAX_EVENTS:
        raise BadRequest(f"events: more than {MAX_EVENTS} in one upload; send smaller batches")
    for index, event in enumerate(events):
        where = f"events[{index}]."
        if not isinstance(event, dict):
            raise BadRequest(f"events[{index}]: must be an object")
        _string(event, "id", where, MAX_EVENT_ID)
        _time(event, "at", where)
        _string(event, "kind", where, 64)
    return EventsUpload(gate=gate, events=events)
