"""A junk central server on 127.0.0.1: each request gets the malformed reply the harness set
(raw bytes on the socket, so status lines, headers and framing can be wrong too).

A redirect points at /bait, which answers a well-formed grant: following a redirect is then
visible as a grant from a reply the contract says is "server unavailable"."""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from dataclasses import dataclass
from typing import Any

BAIT_PATH = "/bait"
MAX_REQUEST = 64 * 1024 * 1024


@dataclass(frozen=True)
class Reply:
    """One malformed answer. `klass` names the malformation for the tables."""

    klass: str
    head: bytes                # status line and headers, CRLF-terminated, blank line included
    body: bytes = b""
    delay_s: float = 0.0       # before the first byte
    trickle_s: float = 0.0     # between 64-byte pieces of the body
    cut_at: int | None = None  # close the connection after this many body bytes


def head(status: str, headers: dict[str, str] | None = None, body: bytes = b"",
         length: int | None = -1) -> bytes:
    """`length` -1: the body's true length; None: no Content-Length header."""
    lines = [f"HTTP/1.1 {status}"]
    for k, v in (headers if headers is not None else
                 {"Content-Type": "application/json"}).items():
        lines.append(f"{k}: {v}")
    if length is not None:
        lines.append(f"Content-Length: {len(body) if length == -1 else length}")
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class JunkServer:
    """`with JunkServer(bait_body) as srv:` then set `srv.reply` before each request.
    Each connection takes the reply set when its request arrived, so a slow answer still
    being sent cannot mix with the next case."""

    def __init__(self, bait_body: bytes) -> None:
        self.reply = Reply("unset", head("500 Internal Server Error"))
        self.bait = head("200 OK", body=bait_body) + bait_body
        self.requests = 0
        self.bait_requests = 0
        self.last_request_body = b""
        outer = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                try:
                    outer._serve(self.rfile, self.connection)
                except OSError:
                    pass  # the client gave up (its timeout): expected for slow replies

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True
            request_queue_size = 64

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    def _serve(self, rfile: Any, conn: socket.socket) -> None:
        request_line = rfile.readline(65536).decode("latin-1")
        length = 0
        while True:
            line = rfile.readline(65536)
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            if name.strip().lower() == "content-length" and value.strip().isdigit():
                length = min(int(value), MAX_REQUEST)
        body = rfile.read(length) if length else b""
        path = request_line.split(" ")[1] if request_line.count(" ") >= 2 else ""
        if path.startswith(BAIT_PATH):
            self.bait_requests += 1
            conn.sendall(self.bait)
            return
        self.requests += 1
        self.last_request_body = body
        reply = self.reply
        if reply.delay_s:
            time.sleep(reply.delay_s)
        conn.sendall(reply.head)
        data = reply.body if reply.cut_at is None else reply.body[:reply.cut_at]
        if reply.trickle_s:
            for i in range(0, len(data), 64):  # the pause comes first: even a body of
                time.sleep(reply.trickle_s)    # one piece arrives after the budget
                conn.sendall(data[i:i + 64])
        elif data:
            conn.sendall(data)
        if reply.cut_at is not None:  # a reset, not a clean end: SO_LINGER 0
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")

    def __enter__(self) -> JunkServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)
