"""The v1 HTTP API over a Store, and ReferenceServer to run it in a background thread."""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import socket
import socketserver
import ssl
import threading
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, parse_qs, urlsplit

from .store import Credential, Store
from .timefmt import utcnow
from .wire import MAX_GATE_ID, BadRequest, parse_events, parse_json, parse_verify

log = logging.getLogger(__name__)

MAX_BODY = 4 * 1024 * 1024   # an upload of a few thousand events fits; a runaway client does not
IDLE_TIMEOUT_S = 30.0        # a kept-alive connection idle this long is closed
HANDSHAKE_TIMEOUT_S = 10.0   # a client that stalls the TLS handshake ties up one thread only
SHUTDOWN_POLL_S = 0.02       # stop() waits up to this long; an idle select() is cheap even on a Pi


class HttpError(Exception):
    """An error answer: status, message for the JSON body, extra headers."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def make_etag(gate: str, cursor: str, since: str | None) -> str:
    """The ETag of a credentials answer: the same (gate, cursor, since) always gets the same body."""
    digest = hashlib.sha256(f"{gate}\n{cursor}\n{since or ''}".encode()).hexdigest()
    return f'"{digest[:32]}"'


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """If-None-Match comparison (weak, as RFC 9110 asks for this header)."""
    if not if_none_match:
        return False
    for candidate in if_none_match.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == etag:
            return True
    return False


class _HTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that knows its open connections, so stop() really cuts them."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], store: Store, token: str,
                 ssl_context: ssl.SSLContext | None, hits: Counter[str]) -> None:
        self.store = store
        self.token = token.encode("utf-8")
        self.hits = hits
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)
        if ssl_context is not None:
            # The handshake is deferred to the connection's own thread (see below) so one slow
            # client cannot block accept() for everyone.
            self.socket = ssl_context.wrap_socket(self.socket, server_side=True,
                                                  do_handshake_on_connect=False)

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup (getfqdn) that can stall for
        # seconds on a Pi without network; the name is never used here.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        with self._lock:
            self._conns.add(request)
        try:
            if isinstance(request, ssl.SSLSocket):
                request.settimeout(HANDSHAKE_TIMEOUT_S)
                try:
                    request.do_handshake()
                except (ssl.SSLError, OSError) as exc:
                    log.info("TLS handshake with %s failed: %s", client_address[0], exc)
                    self.shutdown_request(request)
                    return
            super().process_request_thread(request, client_address)
        finally:
            with self._lock:
                self._conns.discard(request)

    def count(self, path: str) -> None:
        with self._lock:
            self.hits[path] += 1

    def cut_connections(self) -> None:
        """Close kept-alive connections: a stopped server must look down to a client's Session."""
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    # HTTP/1.1 keeps connections alive, as the gate's requests.Session expects.
    protocol_version = "HTTP/1.1"
    server_version = "gate-refserver/1"
    sys_version = ""
    timeout = IDLE_TIMEOUT_S
    # Headers and body leave in one buffered write, with Nagle off: otherwise the body waits
    # for the client's delayed ACK, adding about 40 ms to every answer (the gate's latency).
    wbufsize = -1
    disable_nagle_algorithm = True

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        # Request lines carry no codes (those travel in POST bodies), only paths and cursors.
        log.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def _dispatch(self, method: str) -> None:
        self._body_read = False
        url = urlsplit(self.path)
        self.server.count(url.path)
        try:
            # Authenticate before routing so an unauthenticated client learns nothing.
            if not self._authorised():
                raise HttpError(401, "missing or wrong bearer token",
                                {"WWW-Authenticate": 'Bearer realm="gate"'})
            route = _ROUTES.get(url.path)
            if route is None:
                raise HttpError(404, f"no such endpoint: {url.path}")
            allowed, handler = route
            if method != allowed:
                raise HttpError(405, f"{url.path} accepts {allowed} only", {"Allow": allowed})
            handler(self, url)
        except HttpError as exc:
            self._send_json(exc.status, {"error": exc.message}, exc.headers)
        except BadRequest as exc:
            self._send_json(400, {"error": str(exc)})
        except Exception:
            log.exception("internal error on %s %s", method, url.path)
            self._send_json(500, {"error": "internal error"})

    def _authorised(self) -> bool:
        scheme, _, token = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            return False
        # compare_digest: the time taken must not tell an attacker how much of a guess matched.
        return secrets.compare_digest(token.strip().encode("utf-8"), self.server.token)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding"):
            raise HttpError(411, "chunked bodies are not supported; send Content-Length")
        header = self.headers.get("Content-Length")
        if header is None:
            raise HttpError(411, "Content-Length required")
        try:
            length = int(header)
            if length < 0:
                raise ValueError
        except ValueError:
            raise HttpError(400, f"bad Content-Length: {header!r}") from None
        if length > MAX_BODY:
            raise HttpError(413, f"body larger than {MAX_BODY} bytes; send smaller batches")
        raw = self.rfile.read(length)
        if len(raw) != length:
            raise HttpError(400, "body shorter than Content-Length")
        self._body_read = True
        return raw

    def _body_pending(self) -> bool:
        if self._body_read:
            return False
        if self.headers.get("Transfer-Encoding"):
            return True
        return (self.headers.get("Content-Length") or "0").strip() != "0"

    def _send_json(self, status: int, obj: dict[str, Any],
                   headers: dict[str, str] | None = None) -> None:
        body = json.dumps(obj, separators=(",", ":")).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self._body_pending():
            # An unread body would be parsed as the next request on a kept-alive connection.
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    # -- endpoints -----------------------------------------------------------------------

    def _verify(self, url: SplitResult) -> None:
        request = parse_verify(parse_json(self._read_body()))
        verdict = self.server.store.verify(request.code)
        log.info("verify from gate %s: %s (%s), credential %s", request.gate, verdict.decision,
                 verdict.reason, verdict.credential_id or "-")
        self._send_json(200, verdict.to_json(), {"Cache-Control": "no-store"})

    def _credentials(self, url: SplitResult) -> None:
        query = parse_qs(url.query, keep_blank_values=True)
        gate = (query.get("gate") or [""])[-1]
        if not gate or len(gate) > MAX_GATE_ID:
            raise HttpError(400, "gate: required query parameter (the gate id)")
        since = (query.get("since") or [""])[-1] or None
        store = self.server.store
        if_none_match = self.headers.get("If-None-Match")
        # Cheap check first: a gate that is up to date gets its 304 without listing anything.
        etag = make_etag(gate, store.cursor(), since)
        if etag_matches(if_none_match, etag):
            self._send_not_modified(etag)
            return
        page = store.credentials_page(since)
        etag = make_etag(gate, page.cursor, since)
        if etag_matches(if_none_match, etag):
            self._send_not_modified(etag)
            return
        log.info("credentials for gate %s: %s, %d rows, cursor %s",
                 gate, "full" if page.full else "delta", len(page.credentials), page.cursor)
        self._send_json(200, page.to_json(), {"ETag": etag, "Cache-Control": "no-cache"})

    def _send_not_modified(self, etag: str) -> None:
        # A 304 never has a body, so no Content-Length is needed to keep the connection.
        self.send_response(304)
        self.send_header("ETag", etag)
        self.end_headers()

    def _events(self, url: SplitResult) -> None:
        upload = parse_events(parse_json(self._read_body()))
        result = self.server.store.ingest_events(upload.gate, upload.events)
        # The receipt of the v1 contract: `accepted` lists every id the server now holds (new
        # or already held), `stored` counts them; a batch is all or nothing here, so nothing
        # is ever `rejected` alone (a bad event is a 400 for the batch). `new` and
        # `duplicates` are extras for people reading the reply.
        accepted = list(result.accepted)
        self._send_json(200, {"stored": len(accepted), "accepted": accepted, "rejected": [],
                              "new": result.stored, "duplicates": result.duplicates})


_ROUTES: dict[str, tuple[str, Callable[[_Handler, SplitResult], None]]] = {
    "/v1/verify": ("POST", _Handler._verify),
    "/v1/credentials": ("GET", _Handler._credentials),
    "/v1/events": ("POST", _Handler._events),
}


class ReferenceServer:
    """The reference server in a background thread, for tests and for `serve`.

    `port=0` picks a free port; read `.url` after `start()`. Pass `ssl_context` (a server
    context with a certificate loaded) to serve HTTPS. `clock` lets tests move time.
    """

    def __init__(self, db_path: str | Path, token: str, host: str = "127.0.0.1", port: int = 0,
                 ssl_context: ssl.SSLContext | None = None,
                 clock: Callable[[], datetime] = utcnow) -> None:
        if not token or token != token.strip():
            raise ValueError("token must be non-empty, without surrounding whitespace")
        self.store = Store(db_path, clock)
        self.host = host
        self._port = port
        self._token = token
        self._ssl_context = ssl_context
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._hits: Counter[str] = Counter()

    def start(self) -> ReferenceServer:
        if self._httpd is not None:
            raise RuntimeError("reference server already started")
        self._httpd = _HTTPServer((self.host, self._port), self.store, self._token,
                                  self._ssl_context, self._hits)
        self._port = self._httpd.server_port
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": SHUTDOWN_POLL_S},
                                        name="refserver", daemon=True)
        self._thread.start()
        log.info("reference server listening on %s", self.url)
        return self

    def stop(self) -> None:
        """Stop serving and drop open connections; safe to call twice."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.cut_connections()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        log.info("reference server stopped")

    def __enter__(self) -> ReferenceServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        """Base URL without a trailing slash, e.g. http://127.0.0.1:41234."""
        scheme = "https" if self._ssl_context is not None else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self._port}"

    @property
    def hits(self) -> dict[str, int]:
        """Requests seen per path (authorised or not), so tests can tell the gate called."""
        # Counter updates are single dict operations under the GIL; a copy is consistent enough.
        return dict(self._hits)

    # Direct access to the data, the same as the technician's CLI gives.

    def enrol(self, code: str | None = None, *, code_sha256: str | None = None,
              label: str | None = None, valid_from: datetime | str | None = None,
              valid_until: datetime | str | None = None, status: str | None = None,
              open_s: float | None = None) -> Credential:
        return self.store.enrol(code, code_sha256=code_sha256, label=label,
                                valid_from=valid_from, valid_until=valid_until,
                                status=status, open_s=open_s)

    def revoke(self, code: str | None = None, *, code_sha256: str | None = None) -> bool:
        return self.store.revoke(code, code_sha256=code_sha256)

    def credentials(self, include_revoked: bool = False) -> list[Credential]:
        return self.store.credentials(include_revoked)

    def cursor(self) -> str:
        return self.store.cursor()

    def compact(self) -> int:
        return self.store.compact()

    def events(self, gate: str | None = None) -> list[dict[str, Any]]:
        return self.store.events(gate)


def server_ssl_context(cert_file: str | Path, key_file: str | Path,
                       client_ca_file: str | Path | None = None) -> ssl.SSLContext:
    """A TLS server context; with `client_ca_file`, clients must present a certificate it signed."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(cert_file), str(key_file))
    if client_ca_file is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(str(client_ca_file))
    return context
