"""The central server client (API v1 over requests): verify a code, pull credentials, upload
events. Every failure of any kind is one exception, ServerUnavailable."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import requests

from .config import ConfigError, ServerSection
from .errors import GateError

log = logging.getLogger(__name__)

VERDICTS = ("grant", "deny", "staff")
MAX_OPEN_S = 600.0


class ServerUnavailable(GateError, ConnectionError):
    """The server did not give a usable answer; `reason` is a short word for the journal."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        super().__init__(f"{reason}: {detail}" if detail else reason)


@dataclass(frozen=True)
class VerifyAnswer:
    decision: str
    reason: str
    label: str = ""
    open_s: float | None = None
    status: str | None = None
    credential_id: str | None = None


@dataclass(frozen=True)
class CredentialsPage:
    cursor: str
    full: bool
    credentials: list[dict[str, Any]]
    etag: str | None


def read_token(path: Path) -> str:
    """The bearer token; a missing or empty file is a config error naming the key."""
    try:
        token = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError([f"[server] token_file: cannot read {path}: {exc.strerror}"]) from None
    if not token:
        raise ConfigError([f"[server] token_file: {path} is empty"])
    return token


def make_session(server: ServerSection) -> requests.Session:
    """One keep-alive session with TLS trust pinned by the config, not by the environment."""
    s = requests.Session()
    # trust_env=False: REQUESTS_CA_BUNDLE would otherwise override `verify`, and *_proxy
    # variables would silently reroute a door's traffic.
    s.trust_env = False
    s.verify = str(server.ca_file) if server.ca_file else True
    if server.client_cert:
        s.cert = (str(server.client_cert), str(server.client_key)) if server.client_key \
            else str(server.client_cert)
    s.headers["User-Agent"] = "gate/1"
    return s


class ServerClient:
    """Talks to one central server. Not shared between threads: each worker builds its own."""

    def __init__(self, server: ServerSection, gate_id: str, token: str) -> None:
        self.base = server.url.rstrip("/")
        self.gate_id = gate_id
        self.server = server
        self.session = make_session(server)
        self.session.headers["Authorization"] = f"Bearer {token}"
        # Told the epoch of each usable reply's Date header (the trusted clock's evidence).
        self.on_server_time: Callable[[float], None] | None = None

    def close(self) -> None:
        self.session.close()

    def verify(self, code: bytes, scanned_at: str, timeout_s: float) -> VerifyAnswer:
        body = {"gate": self.gate_id, "code": code.decode("utf-8", errors="replace"),
                "scanned_at": scanned_at}
        data = self._json(self._call("POST", "/v1/verify", json=body,
                                     timeout=(timeout_s, timeout_s)))
        return parse_verify(data)

    def credentials(self, since: str | None, etag: str | None,
                    progress: Callable[[int, int | None], None] | None = None
                    ) -> CredentialsPage | None:
        """One pull; None when the server says nothing changed (304)."""
        params = {"gate": self.gate_id, **({"since": since} if since else {})}
        headers = {"If-None-Match": etag} if etag else {}
        r = self._call("GET", "/v1/credentials", params=params, headers=headers, stream=True,
                       timeout=(self.server.timeout_s * 4, self.server.sync_timeout_s))
        if r.status_code == 304:
            r.close()
            return None
        total = int(r.headers["Content-Length"]) if r.headers.get("Content-Length",
                                                                   "").isdigit() else None
        chunks, received = [], 0
        try:
            for chunk in r.iter_content(chunk_size=256 * 1024):
                chunks.append(chunk)
                received += len(chunk)
                if progress:
                    progress(received, total)
        except requests.RequestException as exc:
            raise ServerUnavailable("connection", type(exc).__name__) from None
        data = self._json_bytes(b"".join(chunks))
        return parse_credentials(data, r.headers.get("ETag"))

    def upload(self, events: list[dict[str, Any]]) -> None:
        self._call("POST", "/v1/events", json={"gate": self.gate_id, "events": events},
                   timeout=(self.server.timeout_s * 4, self.server.sync_timeout_s))

    def _call(self, method: str, path: str, **kw: Any) -> requests.Response:
        try:
            r = self.session.request(method, self.base + path, **kw)
        except requests.exceptions.SSLError as exc:
            raise ServerUnavailable("tls", _short(exc)) from None
        except requests.Timeout:
            raise ServerUnavailable("timeout") from None
        except requests.ConnectionError as exc:
            raise ServerUnavailable("connection", _short(exc)) from None
        except requests.RequestException as exc:
            raise ServerUnavailable("request", _short(exc)) from None
        if r.status_code == 304 or 200 <= r.status_code < 300:
            self._tell_time(r.headers.get("Date"))
            return r
        r.close()
        raise ServerUnavailable(f"http_{r.status_code}")

    def _tell_time(self, date: str | None) -> None:
        if self.on_server_time is None or not date:
            return
        try:  # a hostile header is no evidence, never an error
            epoch = parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError, IndexError, OverflowError):
            return
        self.on_server_time(epoch)

    @staticmethod
    def _json(r: requests.Response) -> Any:
        try:
            return r.json()
        except (ValueError, requests.RequestException):
            raise ServerUnavailable("bad_json") from None

    @staticmethod
    def _json_bytes(raw: bytes) -> Any:
        try:
            return json.loads(raw)
        except ValueError:
            raise ServerUnavailable("bad_json") from None


def _short(exc: Exception) -> str:
    return type(exc).__name__


def parse_verify(data: Any) -> VerifyAnswer:
    """Validate a /v1/verify reply; anything off is 'server unavailable', never a guess."""
    if not isinstance(data, dict):
        raise ServerUnavailable("bad_reply", "not an object")
    decision = data.get("decision")
    if decision not in VERDICTS:
        raise ServerUnavailable("bad_reply", "unknown decision")
    reason = data.get("reason", "")
    label = data.get("label") or ""
    status = data.get("status")
    open_s = data.get("open_s")
    cred_id = data.get("credential_id")
    if not isinstance(reason, str) or not isinstance(label, str):
        raise ServerUnavailable("bad_reply", "reason/label not strings")
    if status is not None and not isinstance(status, str):
        raise ServerUnavailable("bad_reply", "status not a string")
    if open_s is not None:
        if isinstance(open_s, bool) or not isinstance(open_s, (int, float)) or \
                not 0 < open_s <= MAX_OPEN_S:
            raise ServerUnavailable("bad_reply", "open_s out of range")
        open_s = float(open_s)
    return VerifyAnswer(decision=decision, reason=reason or decision, label=label[:200],
                        open_s=open_s, status=status,
                        credential_id=str(cred_id) if cred_id is not None else None)


def parse_credentials(data: Any, etag: str | None) -> CredentialsPage:
    if not isinstance(data, dict) or not isinstance(data.get("credentials"), list):
        raise ServerUnavailable("bad_reply", "no credentials list")
    cursor = data.get("cursor")
    if not isinstance(cursor, (str, int)) or isinstance(cursor, bool):
        raise ServerUnavailable("bad_reply", "no cursor")
    return CredentialsPage(cursor=str(cursor), full=bool(data.get("full", False)),
                           credentials=data["credentials"], etag=etag)
