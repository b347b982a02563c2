"""Technician's command line for the reference server: serve, enrol, revoke, list, events, token."""

from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import os
import secrets
import signal
import stat
import sys
import time
from pathlib import Path
from typing import Any

from .server import ReferenceServer, server_ssl_context
from .store import COLOURS, Store

log = logging.getLogger("gate.refserver")

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def create_token_file(path: str | Path) -> bool:
    """Write a fresh random token to `path` (mode 0600) unless it exists. True if created."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: never overwrite a token that gates may already be using.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(secrets.token_urlsafe(32) + "\n")
    return True


def read_token_file(path: str | Path) -> str:
    """The token in `path`, stripped; a clear ValueError if it is missing or empty."""
    path = Path(path)
    try:
        token = path.read_text(encoding="utf-8").strip()
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise ValueError(f"token file {path} does not exist; create one with "
                         f"`python -m gate.refserver token --token-file {path}`") from None
    except OSError as exc:
        raise ValueError(f"token file {path}: {exc.strerror}") from None
    if not token:
        raise ValueError(f"token file {path} is empty")
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("token file %s is readable by other users; chmod 600 it", path)
    return token


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _code_argument(args: argparse.Namespace) -> dict[str, Any]:
    """CODE as given, or read from stdin with `-` so it stays out of shell history and ps."""
    code = args.code
    if code == "-":
        code = sys.stdin.readline().rstrip("\r\n")
    return {"code_sha256": code} if args.sha256 else {"code": code}


def _cmd_serve(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    token = read_token_file(args.token_file)
    if bool(args.cert) != bool(args.key):
        raise ValueError("--cert and --key go together")
    context = server_ssl_context(args.cert, args.key, args.client_ca) if args.cert else None
    if context is None and not _is_loopback(args.host):
        # The gate refuses plain http:// to anything but loopback, so say why it will fail.
        log.warning("serving plain HTTP on %s: gates accept http:// only on a loopback "
                    "address; give --cert and --key to serve HTTPS", args.host)
    server = ReferenceServer(args.db, token, host=args.host, port=args.port, ssl_context=context)
    stopping: list[int] = []

    def _stop(signum: int, frame: object) -> None:
        stopping.append(signum)

    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.start()
        # One line on stdout so scripts (and tests using --port 0) learn the address.
        print(f"listening on {server.url}", flush=True)
        while not stopping:
            time.sleep(0.1)
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return EXIT_OK


def _cmd_enrol(args: argparse.Namespace) -> int:
    cred = Store(args.db).enrol(**_code_argument(args), label=args.label,
                                valid_from=args.valid_from, valid_until=args.valid_until,
                                status=args.status, open_s=args.open_s)
    print(f"enrolled {cred.id} label={cred.label or '-'} sha256={cred.code_sha256[:12]}... "
          f"valid {cred.valid_from or '-'} .. {cred.valid_until or '-'}"
          + (f" status={cred.status}" if cred.status else ""))
    return EXIT_OK


def _cmd_revoke(args: argparse.Namespace) -> int:
    store = Store(args.db)
    target = _code_argument(args)
    if store.revoke(**target):
        print("revoked")
        return EXIT_OK
    cred = store.get(**target)
    print("already revoked" if cred else "not enrolled", file=sys.stderr)
    return EXIT_OK if cred else EXIT_FAILED


def _cmd_list(args: argparse.Namespace) -> int:
    store = Store(args.db)
    creds = store.credentials(include_revoked=args.all)
    for cred in creds:
        if args.json:
            print(json.dumps(cred.to_json(), sort_keys=True))
        else:
            state = "revoked" if cred.revoked else (cred.status or "-")
            print(f"{cred.id}  {cred.code_sha256[:12]}...  {state:8} "
                  f"{cred.valid_from or '-'} .. {cred.valid_until or '-'}  {cred.label or ''}")
    if not args.json:
        print(f"{len(creds)} credentials, cursor {store.cursor()}", file=sys.stderr)
    return EXIT_OK


def _cmd_events(args: argparse.Namespace) -> int:
    for record in Store(args.db).event_records(args.gate):
        event = record.event
        if args.json:
            print(json.dumps(event, sort_keys=True))
            continue
        extra = " ".join(f"{k}={event[k]}" for k in ("verdict", "reason", "source", "label",
                                                      "state", "latency_ms") if k in event)
        print(f"{event['at']}  {record.gate}  {event['kind']}  {extra}".rstrip())
    return EXIT_OK


def _cmd_token(args: argparse.Namespace) -> int:
    created = create_token_file(args.token_file)
    print(f"{'created' if created else 'kept existing'} token file {args.token_file}")
    return EXIT_OK


def _cmd_compact(args: argparse.Namespace) -> int:
    removed = Store(args.db).compact()
    print(f"removed {removed} revoked credentials; gates will get a full list on next sync")
    return EXIT_OK


def build_parser(prog: str = "python -m gate.refserver") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="Reference central server (API v1) "
                                     "for trying gates without the organisation's server.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_text, description=help_text)

    p = command("serve", "serve the v1 API")
    p.add_argument("--db", required=True, help="SQLite file (created if absent)")
    p.add_argument("--token-file", required=True, help="file holding the bearer token")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port (default 8080; 0 picks a free one)")
    p.add_argument("--cert", help="PEM certificate chain: serve HTTPS")
    p.add_argument("--key", help="PEM private key for --cert")
    p.add_argument("--client-ca", help="PEM CA: require client certificates signed by it")
    p.add_argument("-v", "--verbose", action="store_true", help="log every request")
    p.set_defaults(func=_cmd_serve)

    code_help = "the code's payload, or - to read it from stdin (keeps it out of shell history)"
    p = command("enrol", "enrol a code, or change an enrolled one (which also un-revokes it)")
    p.add_argument("--db", required=True)
    p.add_argument("code", metavar="CODE", help=code_help)
    p.add_argument("--sha256", action="store_true", help="CODE is already the SHA-256 hex")
    p.add_argument("--label", required=True, help="who or what the code is for (shown in logs)")
    p.add_argument("--valid-from", help="RFC 3339 time with offset, e.g. 2025-01-01T08:00:00Z")
    p.add_argument("--valid-until", help="RFC 3339 time with offset (exclusive end)")
    p.add_argument("--status", choices=COLOURS, help="status colour sent with each answer")
    p.add_argument("--open-s", type=float, help="seconds the door opens for this code")
    p.set_defaults(func=_cmd_enrol)

    p = command("revoke", "revoke an enrolled code")
    p.add_argument("--db", required=True)
    p.add_argument("code", metavar="CODE", help=code_help)
    p.add_argument("--sha256", action="store_true", help="CODE is already the SHA-256 hex")
    p.set_defaults(func=_cmd_revoke)

    p = command("list", "list enrolled credentials (hashes only, never codes)")
    p.add_argument("--db", required=True)
    p.add_argument("--all", action="store_true", help="include revoked ones")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=_cmd_list)

    p = command("events", "print events uploaded by gates, in arrival order")
    p.add_argument("--db", required=True)
    p.add_argument("--gate", help="only this gate's events")
    p.add_argument("--json", action="store_true", help="one JSON object per line, as uploaded")
    p.set_defaults(func=_cmd_events)

    p = command("token", "create a random bearer-token file (mode 0600) if it does not exist")
    p.add_argument("--token-file", required=True)
    p.set_defaults(func=_cmd_token)

    p = command("compact", "delete revoked credentials; gates then re-sync the full list")
    p.add_argument("--db", required=True)
    p.set_defaults(func=_cmd_compact)
    return parser


def main(argv: list[str] | None = None, prog: str = "python -m gate.refserver") -> int:
    """Run one subcommand; returns the exit status (0 ok, 1 failed, 2 bad input)."""
    args = build_parser(prog).parse_args(argv)
    try:
        return int(args.func(args))
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE if isinstance(exc, ValueError) else EXIT_FAILED
