"""Reading central-server replies as the hostile input they are: one layer every endpoint goes
through. A reply is read only up to a byte cap and only until a deadline, must say
`application/json` without a content encoding, must parse as one JSON document (no NaN, no
duplicate keys) and must then match the contract's types exactly. Anything else, including
any exception while parsing (a deeply nested document raises RecursionError), is one
`ServerUnavailable`, so the offline policy decides and nothing half-valid is ever applied."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import requests
from requests.structures import CaseInsensitiveDict

from ..errors import GateError

# Default reply caps (documented in docs/server-api.md). A verify or upload reply is a few
# hundred bytes; a credential page is ~150 bytes a row, so 64 MiB holds ~400k credentials.
VERIFY_REPLY_MAX = 64 * 1024
UPLOAD_REPLY_MAX = 1024 * 1024   # may list every id of a 10k-event batch
SYNC_REPLY_MAX = 64 * 1024 * 1024
READ_CHUNK = 64 * 1024


class ServerUnavailable(GateError, ConnectionError):
    """The server did not give a usable answer; `reason` is a short word for the journal."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        super().__init__(f"{reason}: {detail}" if detail else reason)


def bad(detail: str) -> ServerUnavailable:
    return ServerUnavailable("bad_reply", detail)


@dataclass(frozen=True)
class Reply:
    """A reply that passed the transport checks: status, headers and the parsed JSON (None
    for a reply without a body, i.e. 304)."""

    status: int
    headers: Mapping[str, str]   # case-insensitive: HTTP/2 and uvicorn send "etag"
    data: Any


def media_type(headers: Any) -> str:
    return str(headers.get("Content-Type", "")).split(";", 1)[0].strip().lower()


def read_body(r: requests.Response, cap: int, deadline: float,
              progress: Callable[[int, int | None], None] | None = None,
              clock: Callable[[], float] = time.monotonic) -> bytes:
    """At most `cap` bytes of the body, read before `deadline` (on `clock`).

    read1 returns whatever one socket read brings, so a server that drips a byte at a time
    is noticed at the deadline instead of holding the thread (and its pool slot) for ever;
    a declared Content-Length over the cap is refused before a byte of body is read.
    """
    declared = r.headers.get("Content-Length", "")
    total = int(declared) if declared.isdigit() else None
    if total is not None and total > cap:
        raise ServerUnavailable("too_large", f"{total} bytes declared, cap {cap}")
    chunks: list[bytes] = []
    received = 0
    try:
        while True:
            if clock() > deadline:
                raise ServerUnavailable("timeout", "reply body not read in time")
            chunk = r.raw.read1(READ_CHUNK, decode_content=False)
            if clock() > deadline:  # a read that blocked past the deadline counts too
                raise ServerUnavailable("timeout", "reply body not read in time")
            if not chunk:
                break
            received += len(chunk)
            if received > cap:
                raise ServerUnavailable("too_large", f"more than {cap} bytes")
            chunks.append(chunk)
            if progress:
                progress(received, total)
    except ServerUnavailable:
        raise
    except Exception as exc:  # urllib3's read errors are not requests' exception types
        reason = "timeout" if "timeout" in type(exc).__name__.lower() else "connection"
        raise ServerUnavailable(reason, type(exc).__name__) from None
    return b"".join(chunks)


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):  # two parsers could read {"decision": deny, "decision": grant}
        raise ValueError("duplicate key")
    return out


def _check_unicode(doc: Any) -> None:
    """Every string is real Unicode: JSON's escapes can smuggle a lone surrogate (\\udcff)
    that no UTF-8 encoder (SQLite, the journal, a log line) will take later."""
    stack = [doc]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not item.isascii():
                item.encode("utf-8")  # UnicodeEncodeError on a lone surrogate
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def parse_json(raw: bytes) -> Any:
    """Strict JSON in UTF-8; every failure, whatever its exception type, is bad_json."""
    try:
        doc = json.loads(raw.decode("utf-8"), parse_constant=_no_constants,
                         object_pairs_hook=_no_duplicates)
        _check_unicode(doc)
        return doc
    except Exception as exc:  # RecursionError, MemoryError, UnicodeError, ValueError...
        raise ServerUnavailable("bad_json", type(exc).__name__) from None


def _check_transport(r: requests.Response) -> None:
    """HTTP/1.0 or 1.1 with a printable reason phrase, and JSON in UTF-8: a status line or a
    charset the contract does not speak is not a reply to trust, whatever its body says."""
    version = getattr(r.raw, "version", None)
    if version not in (10, 11):
        raise bad(f"HTTP version {version!r}")
    if not (r.reason or "").isprintable():
        raise bad("status line with control characters")
    ctype = str(r.headers.get("Content-Type", ""))
    if media_type(r.headers) != "application/json":
        raise bad(f"content type {media_type(r.headers) or 'missing'!r}, not JSON")
    for param in ctype.split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in (
                "utf-8", "utf8"):
            raise bad(f"charset {value.strip()!r}, not UTF-8")


def read_reply(r: requests.Response, cap: int, deadline: float,
               progress: Callable[[int, int | None], None] | None = None) -> Reply:
    """The checked reply of a 2xx (or 304, without a body); closes the response."""
    try:
        headers = CaseInsensitiveDict(r.headers)
        if r.status_code == 304:
            return Reply(304, headers, None)
        _check_transport(r)
        encoding = r.headers.get("Content-Encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):  # we ask for identity: no decompression bombs
            raise bad(f"content encoding {encoding!r}")
        return Reply(r.status_code, headers, parse_json(read_body(r, cap, deadline, progress)))
    finally:
        r.close()  # a body not read to its end also drops the connection: nothing lingers


# -- the contract's types --------------------------------------------------------------------

def optional(data: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    """An optional field: absent or null is None; present, it must have the contract's type
    (a JSON boolean is never a number, a string is never a boolean)."""
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) and kind is not bool:
        raise bad(f"{key}: boolean where {getattr(kind, '__name__', kind)} expected")
    if not isinstance(value, kind):
        raise bad(f"{key}: {type(value).__name__}, not the contract's type")
    return value


def required(data: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    value = optional(data, key, kind)
    if value is None:
        raise bad(f"{key}: missing")
    return value


def an_object(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise bad("not a JSON object")
    return data


def string_list(data: dict[str, Any], key: str) -> list[str] | None:
    value = optional(data, key, list)
    if value is None:
        return None
    if not all(isinstance(v, str) for v in value):
        raise bad(f"{key}: not a list of strings")
    return [str(v) for v in value]
