"""The central server client (API v1 over requests): verify a code, pull credentials, upload
events. Every failure of any kind is one exception, ServerUnavailable; every reply is read
through gate.central.replies."""

from __future__ import annotations

import base64
import http.cookiejar
import logging
import os
import re
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import requests

from ..config import ServerSection
from ..contracts import VERDICTS
from ..errors import ConfigError
from ..occupancy import Lease, LeaseError, ServerOccupancy
from .replies import (
    SYNC_REPLY_MAX,
    UPLOAD_REPLY_MAX,
    VERIFY_REPLY_MAX,
    Reply,
    ServerUnavailable,
    an_object,
    optional,
    read_reply,
    required,
    string_list,
)

__all__ = ["ServerClient", "ServerUnavailable", "VerifyAnswer", "CredentialsPage",
           "UploadReceipt", "read_token", "verify_body"]

log = logging.getLogger(__name__)

MAX_OPEN_S = 600.0


@dataclass(frozen=True)
class VerifyAnswer:
    decision: str
    reason: str
    label: str = ""
    open_s: float | None = None
    status: str | None = None
    credential_id: str | None = None
    occupancy: ServerOccupancy | None = None


@dataclass(frozen=True)
class SitePolicy:
    """A `POST /v1/leases` reply: the site's rules and this gate's new lease (None: out gate
    or nothing granted)."""

    site: str
    direction: str
    occupancy: str
    anti_passback: str
    passback_window_s: float
    capacity: int | None
    inside: int
    lease: Lease | None


@dataclass(frozen=True)
class CredentialsPage:
    cursor: str
    full: bool
    credentials: list[dict[str, Any]]
    etag: str | None


MAX_TOKEN_BYTES = 4096
TOKEN_CHARS = re.compile(r"^[\x21-\x7e]+$")  # visible ASCII: it goes into an HTTP header


def read_token(path: Path) -> str:
    """The bearer token. A missing, empty, oversized or non-ASCII file is a config error
    naming the key, and so is one that group or others may write (whoever can write it
    decides whom the gate trusts); one that others may read is a warning."""
    where = "[server] token_file"
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())  # the file read, not whatever the path names later
            if not stat.S_ISREG(st.st_mode):
                raise ConfigError([f"{where}: {path} is not a regular file"])
            mode = stat.S_IMODE(st.st_mode)
            if mode & 0o022:
                who = " and ".join(w for bit, w in ((0o020, "group"), (0o002, "others"))
                                   if mode & bit)
                raise ConfigError([f"{where}: {path} is writable by {who} (mode {mode:04o}); "
                                   f"chmod 0640 {path}"])
            data = f.read(MAX_TOKEN_BYTES + 1)
    except OSError as exc:
        raise ConfigError([f"{where}: cannot read {path}: {exc.strerror or exc}"]) from None
    if mode & 0o004:
        log.warning("%s: %s is readable by everyone on this machine (mode %04o); "
                    "chmod 0640 it", where, path, mode)
    if len(data) > MAX_TOKEN_BYTES:
        raise ConfigError([f"{where}: {path} is larger than {MAX_TOKEN_BYTES} bytes"])
    try:
        token = data.decode("ascii").strip()
    except UnicodeDecodeError:
        raise ConfigError([f"{where}: {path} is not ASCII text"]) from None
    if not token:
        raise ConfigError([f"{where}: {path} is empty"])
    if not TOKEN_CHARS.match(token):  # never echo it: it is a secret
        raise ConfigError([f"{where}: {path} must hold one token on one line, without "
                           "spaces or control characters"])
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
    s.headers["Accept"] = "application/json"
    s.headers["Accept-Encoding"] = "identity"  # a compressed reply could expand past any cap
    # No cookies: they are not in the contract, and a server must not plant state in the gate.
    s.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    return s


class ServerClient:
    """Talks to one central server. Every reply goes through `_exchange` (gate.central.replies): no
    redirect is followed, bodies are capped and read within a deadline, and only JSON of the
    contract's types comes out; anything else is ServerUnavailable. Its session may serve a
    few verify threads at once (requests' connection pool is thread-safe; cookies are refused)."""

    def __init__(self, server: ServerSection, gate_id: str, token: str,
                 sync_reply_max: int = SYNC_REPLY_MAX) -> None:
        self.base = server.url.rstrip("/")
        self.gate_id = gate_id
        self.server = server
        self.sync_reply_max = sync_reply_max
        self.session = make_session(server)
        self.session.headers["Authorization"] = f"Bearer {token}"
        # Told the epoch of each usable reply's Date header (the trusted clock's evidence).
        self.on_server_time: Callable[[float], None] | None = None

    def close(self) -> None:
        self.session.close()

    def verify(self, code: bytes, scanned_at: str, timeout_s: float) -> VerifyAnswer:
        """Ask about the exact payload bytes; see verify_body for how they travel."""
        deadline = time.monotonic() + timeout_s
        reply = self._exchange("POST", "/v1/verify", VERIFY_REPLY_MAX, deadline,
                               json=verify_body(self.gate_id, code, scanned_at),
                               timeout=(timeout_s, timeout_s))
        return parse_verify(reply.data)

    def credentials(self, since: str | None, etag: str | None,
                    progress: Callable[[int, int | None], None] | None = None
                    ) -> CredentialsPage | None:
        """One pull; None when the server says nothing changed (304)."""
        params = {"gate": self.gate_id, **({"since": since} if since else {})}
        headers = {"If-None-Match": etag} if etag else {}
        deadline = time.monotonic() + self.server.sync_timeout_s
        reply = self._exchange("GET", "/v1/credentials", self.sync_reply_max, deadline,
                               progress=progress, allow_304=True, params=params,
                               headers=headers,
                               timeout=(self.server.timeout_s * 4, self.server.sync_timeout_s))
        if reply.status == 304:
            return None
        return parse_credentials(reply.data, reply.headers.get("ETag"))

    def upload(self, events: list[dict[str, Any]]) -> UploadReceipt:
        """Send a batch; the receipt says which of its events the server acknowledged."""
        deadline = time.monotonic() + self.server.sync_timeout_s
        reply = self._exchange("POST", "/v1/events", UPLOAD_REPLY_MAX, deadline,
                               json={"gate": self.gate_id, "events": events},
                               timeout=(self.server.timeout_s * 4, self.server.sync_timeout_s))
        return parse_upload(reply.data)

    def leases(self, report: dict[str, Any]) -> SitePolicy:
        """Report the ledger's counters, get the site's rules and a renewed lease."""
        deadline = time.monotonic() + self.server.sync_timeout_s
        reply = self._exchange("POST", "/v1/leases", UPLOAD_REPLY_MAX, deadline,
                               json={"gate": self.gate_id, **report},
                               timeout=(self.server.timeout_s * 4, self.server.sync_timeout_s))
        return parse_leases(reply.data)

    def passages(self, passages: list[dict[str, Any]]) -> frozenset[str]:
        """Report whether doors opened after grants; the ids the server accepted."""
        deadline = time.monotonic() + self.server.sync_timeout_s
        reply = self._exchange("POST", "/v1/passages", UPLOAD_REPLY_MAX, deadline,
                               json={"gate": self.gate_id, "passages": passages},
                               timeout=(self.server.timeout_s * 4, self.server.sync_timeout_s))
        return frozenset(string_list(an_object(reply.data), "accepted") or [])

    def _exchange(self, method: str, path: str, cap: int, deadline: float,
                  progress: Callable[[int, int | None], None] | None = None,
                  allow_304: bool = False, **kw: Any) -> Reply:
        """The one way a request is made and its reply read (every endpoint, now and later)."""
        try:
            r = self.session.request(method, self.base + path, stream=True,
                                     allow_redirects=False, **kw)
        except requests.exceptions.SSLError as exc:
            raise ServerUnavailable("tls", _short(exc)) from None
        except requests.Timeout:
            raise ServerUnavailable("timeout") from None
        except requests.ConnectionError as exc:
            raise ServerUnavailable("connection", _short(exc)) from None
        except Exception as exc:  # requests' others, and anything a hostile reply provokes
            raise ServerUnavailable("request", _short(exc)) from None
        if not (200 <= r.status_code < 300 or (allow_304 and r.status_code == 304)):
            r.close()
            # A redirect is never followed: it could downgrade https to http and re-send the
            # raw code, or point a door's traffic anywhere.
            raise ServerUnavailable("redirect" if 300 <= r.status_code < 400
                                    else f"http_{r.status_code}")
        self._tell_time(r.headers.get("Date"))
        return read_reply(r, cap, deadline, progress)

    def _tell_time(self, date: str | None) -> None:
        if self.on_server_time is None or not date:
            return
        try:  # a hostile header is no evidence, never an error
            epoch = parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError, IndexError, OverflowError):
            return
        self.on_server_time(epoch)


def _short(exc: Exception) -> str:
    return type(exc).__name__


def verify_body(gate_id: str, code: bytes, scanned_at: str) -> dict[str, str]:
    """`code_b64` (the exact bytes) always; `code` only when the bytes are valid UTF-8, so a
    v1 server that knows only `code` never sees a lossy replacement-character string that
    could match another code: it sees no code and answers 400 or deny."""
    body = {"gate": gate_id, "scanned_at": scanned_at,
            "code_b64": base64.b64encode(code).decode("ascii")}
    try:
        body["code"] = code.decode("utf-8")
    except UnicodeDecodeError:
        pass
    return body


def parse_verify(data: Any) -> VerifyAnswer:
    """Validate a /v1/verify reply; anything off is 'server unavailable', never a guess."""
    data = an_object(data)
    decision = required(data, "decision", str)
    if decision not in VERDICTS:
        raise ServerUnavailable("bad_reply", "unknown decision")
    reason = required(data, "reason", str)
    label = optional(data, "label", str) or ""
    status = optional(data, "status", str)
    cred_id = optional(data, "credential_id", str)
    open_s = optional(data, "open_s", (int, float))
    if open_s is not None:
        if not 0 < open_s <= MAX_OPEN_S:  # NaN is refused by the parser already
            raise ServerUnavailable("bad_reply", "open_s out of range")
        open_s = float(open_s)
    return VerifyAnswer(decision=decision, reason=reason or decision, label=label[:200],
                        open_s=open_s, status=status, credential_id=cred_id,
                        occupancy=parse_occupancy(data))


PASSAGE_ID_MAX = 128
ALARMS = ("occupancy_full", "anti_passback")
MODES = ("off", "soft", "hard")


def parse_occupancy(data: dict[str, Any]) -> ServerOccupancy | None:
    """The optional `passage`, `alarm`, `lease_spend` of a verify reply, types exactly."""
    passage = optional(data, "passage", dict)
    alarm = optional(data, "alarm", str)
    spend = optional(data, "lease_spend", bool)
    if alarm is not None and alarm not in ALARMS:
        raise ServerUnavailable("bad_reply", "alarm: unknown")
    if spend is False:  # the contract says `true` or absent
        raise ServerUnavailable("bad_reply", "lease_spend: must be true")
    pid = direction = None
    if passage is not None:
        pid = required(passage, "id", str)
        direction = required(passage, "direction", str)
        if not 1 <= len(pid) <= PASSAGE_ID_MAX or not pid.isprintable():
            raise ServerUnavailable("bad_reply", "passage.id")
        if direction not in ("in", "out"):
            raise ServerUnavailable("bad_reply", "passage.direction")
    if passage is None and alarm is None and spend is None:
        return None
    return ServerOccupancy(pid, direction, alarm, bool(spend))


def parse_leases(data: Any) -> SitePolicy:
    """A `POST /v1/leases` reply; a lease the ledger refuses is 'unavailable' too."""
    data = an_object(data)
    site = required(data, "site", str)
    direction = required(data, "direction", str)
    occ = required(data, "occupancy", str)
    passback = required(data, "anti_passback", str)
    window = required(data, "passback_window_s", (int, float))
    capacity = optional(data, "capacity", int)
    inside = required(data, "inside", int)
    if direction not in ("in", "out", "both") or occ not in MODES or passback not in MODES:
        raise ServerUnavailable("bad_reply", "direction, occupancy or anti_passback unknown")
    if not 0 <= window <= 7 * 86400 or (capacity is not None and capacity < 0) or inside < 0:
        raise ServerUnavailable("bad_reply", "passback_window_s, capacity or inside range")
    raw = data.get("lease")
    try:
        lease = None if raw is None else Lease.from_json(raw)
    except LeaseError as exc:
        raise ServerUnavailable("bad_reply", str(exc)) from None
    return SitePolicy(site, direction, occ, passback, float(window), capacity, inside, lease)


def parse_credentials(data: Any, etag: str | None) -> CredentialsPage:
    """The page envelope; `full` must be a JSON boolean (a string "false" once wiped caches).
    Rows are checked one by one by the sync (gate.central.sync.to_credential)."""
    data = an_object(data)
    credentials = required(data, "credentials", list)
    cursor = required(data, "cursor", str)
    full = required(data, "full", bool)
    return CredentialsPage(cursor=cursor, full=full, credentials=credentials, etag=etag)


@dataclass(frozen=True)
class UploadReceipt:
    """What a 2xx /v1/events reply acknowledged: `accepted` / `rejected` ids when the server
    lists them (None when it does not), and `stored` when it counts."""

    stored: int | None
    accepted: frozenset[str] | None
    rejected: frozenset[str]

    def settle(self, batch_ids: list[str]) -> tuple[list[str], list[str]]:
        """(ids to mark uploaded, ids to dead-letter) for this batch; the rest stay pending.

        With an `accepted` list, exactly its ids that are in the batch are marked. Without
        one, the whole batch is marked only when `stored` is absent (a v1 2xx meant "stored")
        or equals the batch size and nothing was rejected; a partial count without ids marks
        nothing, and the batch is re-sent (the server de-duplicates by id).
        """
        dead = [i for i in batch_ids if i in self.rejected]
        if self.accepted is not None:
            return [i for i in batch_ids if i in self.accepted and i not in self.rejected], dead
        if not dead and self.stored in (None, len(batch_ids)):
            return list(batch_ids), []
        return [], dead


def parse_upload(data: Any) -> UploadReceipt:
    data = an_object(data)
    if "stored" in data and data["stored"] is None:  # a count, or absent: null is neither
        raise ServerUnavailable("bad_reply", "stored: null")
    stored = optional(data, "stored", int)
    if stored is not None and stored < 0:
        raise ServerUnavailable("bad_reply", "stored: negative")
    accepted = string_list(data, "accepted")
    rejected = string_list(data, "rejected") or []
    return UploadReceipt(stored=stored, rejected=frozenset(rejected),
                         accepted=None if accepted is None else frozenset(accepted))
