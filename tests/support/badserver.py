"""A misbehaving central server for fault tests: slow, 500, garbage, closes the connection,
redirects, huge or dripping bodies, any reply a test sets (`custom`), a batch refused for one
poisoned event, or a normal answer; optionally over TLS. Serves on 127.0.0.1 only."""

from __future__ import annotations

import hashlib
import json
import socket
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

MODES = ("ok", "slow", "500", "garbage", "close", "bad_decision", "stall_body", "big_list",
         "redirect", "huge", "drip", "custom", "events")


class BadServer:
    """`mode` may be changed while running; `delay_s` is how long "slow" stalls."""

    def __init__(self, mode: str = "ok", delay_s: float = 3.0,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.mode = mode
        self.delay_s = delay_s
        self.requests = 0
        self.list_rows = 10               # big_list / stall_body: credentials in the list
        self.body_started = threading.Event()
        self.bodies: list[dict[str, Any]] = []   # every JSON request body, in arrival order
        self.redirect_to = ""             # redirect: the Location (a path is appended)
        self.redirect_status = 302
        self.huge_bytes = 300 * 1024 * 1024
        self.huge_length = True           # huge: declare Content-Length, or close-delimited
        self.bytes_served = 0             # huge / drip: body bytes the socket accepted
        self.drip_first = 0               # drip: only the first N requests drip, later are ok
        self.drip_s = 0.05
        self.release = threading.Event()  # drip: stop dripping (the test is over)
        self.drips_ended = threading.Semaphore(0)  # released when a drip loop ends
        self.reply: tuple[int, str, bytes] = (200, "application/json", b"{}")  # custom
        self.reply_headers: dict[str, str] = {}
        self.poison: set[str] = set()     # events: ids whose batch gets a 400
        self.batches: list[list[str]] = []  # events: ids of every batch received
        self.accepted: list[str] = []     # events: ids acknowledged with 200
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length)
                with outer._lock:
                    outer.requests += 1
                    number = outer.requests
                    if raw:
                        try:
                            outer.bodies.append(json.loads(raw))
                        except ValueError:
                            pass
                outer.answer(self, number)

            do_GET = do_POST

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        if ssl_context is not None:
            self.httpd.socket = ssl_context.wrap_socket(self.httpd.socket, server_side=True)
        scheme = "https" if ssl_context else "http"
        self.url = f"{scheme}://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True,
                                        kwargs={"poll_interval": 0.05})

    def answer(self, h: BaseHTTPRequestHandler, number: int = 0) -> None:
        mode = self.mode
        if mode == "drip" and number <= self.drip_first:
            return self.send_drip(h)
        if mode == "drip":
            mode = "ok"
        if mode == "redirect":
            return self.send(h, self.redirect_status, b"", "text/html",
                             {"Location": self.redirect_to + h.path})
        if mode == "huge":
            return self.send_huge(h)
        if mode == "custom":
            status, ctype, body = self.reply
            return self.send(h, status, body, ctype, self.reply_headers)
        if mode == "events":
            return self.send_events(h)
        if mode in ("stall_body", "big_list"):
            return self.send_list(h, stall=mode == "stall_body")
        if mode == "slow":
            time.sleep(self.delay_s)
            mode = "ok"
        if mode == "close":
            h.connection.shutdown(socket.SHUT_RDWR)
            h.close_connection = True
            return
        if mode == "500":
            body, status = b'{"error": "boom"}', 500
        elif mode == "garbage":
            body, status = b"<html>this is not json", 200
        elif mode == "bad_decision":
            body, status = json.dumps({"decision": "maybe", "reason": "x"}).encode(), 200
        else:
            body, status = json.dumps({"decision": "grant", "reason": "ok",
                                       "label": "From Server"}).encode(), 200
        try:
            h.send_response(status)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(body)
        except OSError:
            pass  # the client gave up (its timeout); that is the point of "slow"

    @staticmethod
    def send(h: BaseHTTPRequestHandler, status: int, body: bytes, ctype: str,
             headers: dict[str, str] | None = None) -> None:
        try:
            h.send_response(status)
            if ctype:
                h.send_header("Content-Type", ctype)
            for key, value in (headers or {}).items():
                h.send_header(key, value)
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(body)
        except OSError:
            pass

    def send_huge(self, h: BaseHTTPRequestHandler) -> None:
        """`huge_bytes` of a JSON string, 1 MiB per write, until the client hangs up."""
        chunk = b" " * (1024 * 1024)
        try:
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            if self.huge_length:
                h.send_header("Content-Length", str(self.huge_bytes))
            else:
                h.send_header("Connection", "close")
                h.close_connection = True
            h.end_headers()
            h.wfile.flush()
            sent = 0
            while sent < self.huge_bytes:
                h.wfile.write(chunk)
                sent += len(chunk)
                with self._lock:
                    self.bytes_served += len(chunk)
        except OSError:
            pass

    def send_drip(self, h: BaseHTTPRequestHandler) -> None:
        """Headers of a JSON reply, then one byte every `drip_s` until the client hangs up or
        the test releases it: a reply that never ends and never times out a socket read."""
        try:
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", "4000")  # under every cap: only time stops it
            h.end_headers()
            h.wfile.flush()
            while not self.release.wait(self.drip_s):
                h.wfile.write(b" ")
                with self._lock:
                    self.bytes_served += 1
        except OSError:
            pass
        finally:
            self.drips_ended.release()

    def send_events(self, h: BaseHTTPRequestHandler) -> None:
        """/v1/events refusing (400) any batch that holds a poisoned id, as a strict server
        does; otherwise 200 with the v1 receipt."""
        body = self.bodies[-1] if self.bodies else {}
        ids = [str(e.get("id")) for e in body.get("events", [])]
        with self._lock:
            self.batches.append(ids)
        if self.poison & set(ids):
            return self.send(h, 400, b'{"error": "events[0]: refused"}', "application/json")
        with self._lock:
            self.accepted += ids
        reply = {"stored": len(ids), "accepted": ids, "rejected": []}
        self.send(h, 200, json.dumps(reply).encode(), "application/json")

    def send_list(self, h: BaseHTTPRequestHandler, stall: bool) -> None:
        """A full credential list; with `stall`, half of it and then silence."""
        rows = [{"id": f"n{i}", "code_sha256": hashlib.sha256(f"NEW-{i}".encode()).hexdigest(),
                 "label": f"New {i}"} for i in range(self.list_rows)]
        body = json.dumps({"cursor": "99", "full": True, "credentials": rows}).encode()
        try:
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            if stall:
                h.wfile.write(body[: len(body) // 2])
                h.wfile.flush()
                self.body_started.set()
                time.sleep(self.delay_s)
            h.wfile.write(body)
        except OSError:
            pass

    def __enter__(self) -> BadServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def free_port_url() -> str:
    """A loopback URL on which nothing listens (the server is down)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def make_ca(directory: Path, name: str) -> tuple[Path, Path]:
    """A self-signed CA (cert, key) made with the openssl command line."""
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", f"/CN={name}", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


def make_server_cert(directory: Path, ca: tuple[Path, Path], name: str = "server"
                     ) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 signed by `ca`."""
    cert, key, csr = (directory / f"{name}.pem", directory / f"{name}.key",
                      directory / f"{name}.csr")
    ext = directory / f"{name}.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    subprocess.run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
                    "-keyout", str(key), "-out", str(csr)], check=True, capture_output=True)
    subprocess.run(["openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey",
                    str(ca[1]), "-CAcreateserial", "-days", "2", "-extfile", str(ext),
                    "-out", str(cert)], check=True, capture_output=True)
    return cert, key


def server_ssl_context(cert_file: str | Path, key_file: str | Path,
                       client_ca_file: str | Path | None = None) -> ssl.SSLContext:
    """A TLS server context for BadServer; with `client_ca_file`, clients must present a
    certificate it signed (mutual TLS)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(cert_file), str(key_file))
    if client_ca_file is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(str(client_ca_file))
    return context
