"""Request bodies of API v1, with limits; errors name the field and never echo the input."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..core.timeutil import parse_time

MAX_ID = 128
MAX_CODE = 8192        # a QR code holds at most about 7 kB: anything longer is not a scan
MAX_EVENT_ID = 256
MAX_EVENTS = 10_000    # per upload; the body size limit usually bites first

Id = Annotated[str, Field(min_length=1, max_length=MAX_ID)]


class BadBody(ValueError):
    """A body the server refuses as a whole (400); the message names the field."""


def _rfc3339(value: str) -> str:
    parse_time(value, "time")
    return value


class VerifyIn(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    gate: Id
    scanned_at: Annotated[str, Field(min_length=1, max_length=64)]
    code_b64: Annotated[str, Field(min_length=1, max_length=(MAX_CODE // 3 + 1) * 4)] | None = None
    code: Annotated[str, Field(min_length=1, max_length=MAX_CODE)] | None = None

    @field_validator("scanned_at")
    @classmethod
    def check_time(cls, value: str) -> str:
        return _rfc3339(value)

    def payload(self) -> bytes:
        """The scanned bytes: code_b64 when sent (any bytes), else the UTF-8 `code`."""
        if self.code_b64 is not None:
            try:
                raw = base64.b64decode(self.code_b64, validate=True)
            except (binascii.Error, ValueError):
                raise BadBody("code_b64: not valid base64") from None
            if not raw or len(raw) > MAX_CODE:
                raise BadBody(f"code_b64: decodes to 0 or more than {MAX_CODE} bytes")
            return raw
        if self.code is None:
            raise BadBody("code_b64: required (or code)")
        return self.code.encode("utf-8")


class EventIn(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)
    id: Annotated[str, Field(min_length=1, max_length=MAX_EVENT_ID)]
    at: Annotated[str, Field(min_length=1, max_length=64)]
    kind: Annotated[str, Field(min_length=1, max_length=64)]

    @field_validator("at")
    @classmethod
    def check_time(cls, value: str) -> str:
        return _rfc3339(value)


def field_errors(exc: ValidationError) -> str:
    """'scanned_at: ...; gate: ...' without the offending values (a code must not echo)."""
    parts = []
    for err in exc.errors(include_input=False, include_url=False):
        where = ".".join(str(p) for p in err["loc"]) or "body"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def _no_constants(name: str) -> Any:
    raise BadBody(f"body: {name} is not JSON")


def parse_object(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw.decode("utf-8"), parse_constant=_no_constants)
    except UnicodeDecodeError:
        raise BadBody("body: not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise BadBody(f"body: not JSON ({exc.msg} at column {exc.colno})") from None
    except RecursionError:
        raise BadBody("body: nested too deeply") from None
    if not isinstance(value, dict):
        raise BadBody("body: must be a JSON object")
    return value


def parse_batch(body: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """The batch's shape; an event without a usable id cannot be acknowledged, so it
    refuses the batch (400) instead of being dropped silently."""
    gate = body.get("gate")
    if not isinstance(gate, str) or not 0 < len(gate) <= MAX_ID:
        raise BadBody(f"gate: required string of 1-{MAX_ID} characters")
    events = body.get("events")
    if not isinstance(events, list):
        raise BadBody("events: required array")
    if len(events) > MAX_EVENTS:
        raise BadBody(f"events: more than {MAX_EVENTS}; send smaller batches")
    for i, event in enumerate(events):
        if not isinstance(event, dict):
            raise BadBody(f"events[{i}]: must be an object")
        eid = event.get("id")
        if not isinstance(eid, str) or not 0 < len(eid) <= MAX_EVENT_ID:
            raise BadBody(f"events[{i}].id: required string of 1-{MAX_EVENT_ID} characters")
    return gate, events
