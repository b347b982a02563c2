"""`gate-server`: enrol sites, gates and admins, issue and revoke passes, serve the API.

Exit codes: 0 ok, 2 usage or input error (the message names the field), 1 anything else.
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy.exc import DBAPIError

from gate.passes import dump_keys

from .core import security
from .core.config import Settings, SettingsError, load_settings
from .core.timeutil import parse_time
from .db.session import SchemaError, make_engine, make_sessionmaker, migrate, transaction
from .services import admin, occupancy, passes, signing
from .services.admin import InputError

log = logging.getLogger("gate_server")


class UsageError(ValueError):
    """Exit 2 with this message."""


def _time(value: str | None, field: str) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_time(value, field)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _open_private(path: Path) -> IO[bytes]:
    """Create or replace a file readable by its owner only (it holds a code or a token)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    except OSError as exc:
        raise UsageError(f"{path}: {exc.strerror}") from None
    os.fchmod(fd, 0o600)  # an existing file keeps its mode otherwise
    return os.fdopen(fd, "wb")


def _read_secret_file(path: Path, field: str) -> str:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{field}: cannot read {path}: {getattr(exc, 'strerror', exc)}") from None
    if not text:
        raise UsageError(f"{field}: {path} is empty")
    return text


def _print(obj: dict[str, Any]) -> None:
    print(json.dumps(obj, sort_keys=True))


def cmd_init(settings: Settings, args: argparse.Namespace) -> int:
    created = security.create_secret(settings.secret_file)
    migrate(settings.db_url)
    engine = make_engine(settings.db_url)
    try:
        with transaction(make_sessionmaker(engine)) as session:
            admin.bind_secret(session, security.load_secret(settings.secret_file))
    finally:
        engine.dispose()
    _print({"database": "ready", "secret_file": str(settings.secret_file),
            "secret": "created" if created else "kept"})
    return 0


def _with_db(fn: Callable[[Any, bytes, Settings, argparse.Namespace], int]
             ) -> Callable[[Settings, argparse.Namespace], int]:
    def run(settings: Settings, args: argparse.Namespace) -> int:
        from .main import open_database  # FastAPI is imported only by commands that need it
        db = open_database(settings)
        try:
            with transaction(db.sessions) as session:
                return fn(session, db.secret, settings, args)
        finally:
            db.engine.dispose()
    return run


@_with_db
def cmd_site_add(session: Any, secret: bytes, settings: Settings, args: argparse.Namespace) -> int:
    limit = None
    if args.limit is not None:
        try:
            limit = float(args.limit.rstrip("%"))
        except ValueError:
            raise UsageError(f"--limit: {args.limit!r} is not a percentage (e.g. 80%)") from None
    site = admin.add_site(session, admin.SiteSpec(
        args.name, args.capacity, limit, args.headcount, args.occupancy, args.anti_passback,
        args.timezone, None if args.reset_at == "never" else args.reset_at,
        args.passback_minutes), settings.clock())
    _print({"site": site.name, "id": site.id})
    return 0


@_with_db
def cmd_site_correct(session: Any, secret: bytes, settings: Settings,
                     args: argparse.Namespace) -> int:
    if args.count < 0:
        raise UsageError("--count: must be 0 or more")
    if not admin.USER.fullmatch(args.by):
        raise UsageError("--by: 1-64 letters, digits, '.', '_', '@' or '-'")
    site = admin.site_by_name(session, args.name, "NAME")
    occupancy.correct(session, site, args.count, args.by, settings.clock(), args.note or "")
    _print({"site": site.name, "inside": args.count, "by": args.by})
    return 0


@_with_db
def cmd_site_reset(session: Any, secret: bytes, settings: Settings,
                   args: argparse.Namespace) -> int:
    if not admin.USER.fullmatch(args.by):
        raise UsageError("--by: 1-64 letters, digits, '.', '_', '@' or '-'")
    site = admin.site_by_name(session, args.name, "NAME")
    occupancy.reset(session, site, settings.clock(), args.by)
    _print({"site": site.name, "inside": 0, "by": args.by})
    return 0


@_with_db
def cmd_gate_add(session: Any, secret: bytes, settings: Settings, args: argparse.Namespace) -> int:
    gate, token = admin.add_gate(session, args.id, args.site, args.direction, settings.clock())
    session.flush()  # constraint errors surface before the token file is written
    with _open_private(Path(args.token_file)) as f:
        f.write(token.encode("ascii") + b"\n")
    _print({"gate": gate.id, "site": args.site, "token_file": args.token_file})
    return 0


def _write_code(code: str, qr_text: str | None, png: str | None) -> None:
    if qr_text:
        with _open_private(Path(qr_text)) as f:
            f.write(code.encode("ascii"))
    if png:
        import segno
        # signed passes are drawn at ECC Q (version 9 at most), plain codes at M
        error = "q" if code.startswith("GP1:") else "m"
        with _open_private(Path(png)) as f:
            segno.make(code, error=error, micro=False, boost_error=False).save(
                f, kind="png", scale=10, border=4)


def _shown(session: Any, secret: bytes, row: Any, at: datetime) -> str:
    """The payload the pass shows at ``at``: a plain code never changes, a signed pass is
    re-signed (deterministic), a rotating one adds the code of that 30 s step."""
    if not row.signed:
        return security.pass_code(secret, row.id)
    return signing.shown_text(session, secret, row, at.timestamp())


@_with_db
def cmd_pass_issue(session: Any, secret: bytes, settings: Settings,
                   args: argparse.Namespace) -> int:
    now = settings.clock()
    row = passes.issue(session, secret, passes.IssueSpec(
        args.site, args.holder, args.kind, _time(args.valid_from, "--from"),
        _time(args.valid_until, "--until"), signed=not args.plain, rotating=args.rotating), now)
    _write_code(_shown(session, secret, row, now), args.qr_text, args.png)
    _print(passes.describe(row, args.site, f"/p/{security.page_token(secret, row.id)}", now))
    return 0


@_with_db
def cmd_pass_show(session: Any, secret: bytes, settings: Settings, args: argparse.Namespace) -> int:
    at = _time(args.at, "--at") or settings.clock()
    row = passes.get(session, args.id)
    # --at picks the rotating step shown and the state reported.
    _write_code(_shown(session, secret, row, at), args.qr_text, args.png)
    site = admin.site_name(session, row.site_id)
    _print(passes.describe(row, site, f"/p/{security.page_token(secret, row.id)}", at))
    return 0


@_with_db
def cmd_pass_revoke(session: Any, secret: bytes, settings: Settings,
                    args: argparse.Namespace) -> int:
    row = passes.revoke(session, args.id, settings.clock())
    _print({"id": row.id, "state": "revoked"})
    return 0


@_with_db
def cmd_keys_export(session: Any, secret: bytes, settings: Settings,
                    args: argparse.Namespace) -> int:
    """The public key list (gate/passes/keys.py's file format) for gates without a server."""
    signing.active_key(session, secret, settings.clock())  # a fresh server has one to export
    ring = signing.public_keys(session)
    out = Path(args.out)
    tmp = out.with_name(out.name + ".tmp")
    try:
        tmp.write_text(dump_keys(ring.keys), encoding="utf-8")  # public: no 0600 needed
        os.replace(tmp, out)   # a gate reading the file sees the old list or the new one
    except OSError as exc:
        raise UsageError(f"--out: {out}: {exc.strerror}") from None
    _print({"out": str(out), "kids": [k.kid.hex() for k in ring.keys]})
    return 0


@_with_db
def cmd_keys_rotate(session: Any, secret: bytes, settings: Settings,
                    args: argparse.Namespace) -> int:
    row, retired = signing.rotate(session, secret, settings.clock())
    _print({"kid": row.kid, "retired": retired})
    return 0


@_with_db
def cmd_admin_add(session: Any, secret: bytes, settings: Settings, args: argparse.Namespace) -> int:
    password = _read_secret_file(Path(args.password_file), "--password-file")
    admin.add_admin(session, security.password_hasher(), args.user, password, settings.clock(),
                    args.role)
    _print({"admin": args.user, "role": args.role})
    return 0


def parse_listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536 or not host:
        raise UsageError(f"--listen: {value!r} is not HOST:PORT (e.g. 127.0.0.1:8080)")
    return host.strip("[]"), int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    host, port = parse_listen(args.listen)
    if bool(args.tls_cert) != bool(args.tls_key):
        raise UsageError("--tls-cert: give both --tls-cert and --tls-key, or neither")
    if not args.tls_cert and not is_loopback(host):
        raise UsageError(f"--listen: plain http only on a loopback address; {host} needs "
                         "--tls-cert and --tls-key (or a TLS proxy in front on 127.0.0.1)")
    for field, path in (("--tls-cert", args.tls_cert), ("--tls-key", args.tls_key)):
        if path and not os.access(path, os.R_OK):
            raise UsageError(f"{field}: cannot read {path}")
    if args.metrics_token_file:
        settings = dataclasses.replace(settings, metrics_token_file=Path(args.metrics_token_file))
    import uvicorn

    from .main import create_app
    from .services.resets import ResetScheduler
    app = create_app(settings)
    scheduler = ResetScheduler(app.state.sessions, settings.clock)
    scheduler.start()
    # access_log off: holder page URLs carry their token, which must not land in a log.
    uvicorn.run(app, host=host, port=port, ssl_certfile=args.tls_cert, ssl_keyfile=args.tls_key,
                access_log=False, log_level="info", proxy_headers=False, server_header=False)
    scheduler.stop()
    app.state.engine.dispose()
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gate-server", description=__doc__.splitlines()[0])
    p.add_argument("--db", help="database URL (default $GATE_SERVER_DB, else an SQLite file "
                   "under /var/lib/gate-server/)")
    p.add_argument("--secret-file", help="pass secret (default beside an SQLite file, else "
                   "/var/lib/gate-server/pass-secret; $GATE_SERVER_SECRET_FILE)")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("init", help="create or migrate the schema (idempotent)").set_defaults(fn=cmd_init)

    site = sub.add_parser("site").add_subparsers(dest="action", required=True)
    s = site.add_parser("add")
    s.add_argument("name")
    s.add_argument("--capacity", type=int)
    s.add_argument("--limit", help="percentage of --headcount, e.g. 80%%")
    s.add_argument("--headcount", type=int)
    s.add_argument("--occupancy", default="off", choices=admin.MODES)
    s.add_argument("--anti-passback", default="off", choices=admin.MODES)
    s.add_argument("--timezone", default="UTC")
    s.add_argument("--reset-at", default="03:00",
                   help="daily occupancy reset, site-local HH:MM, or 'never'")
    s.add_argument("--passback-minutes", type=int, default=0,
                   help="timed anti-passback: no re-entry within N minutes (0: off)")
    s.set_defaults(fn=cmd_site_add)
    c = site.add_parser("correct", help="set the people inside (journaled with --by)")
    c.add_argument("name")
    c.add_argument("--count", type=int, required=True)
    c.add_argument("--by", required=True, help="who counted")
    c.add_argument("--note")
    c.set_defaults(fn=cmd_site_correct)
    rs = site.add_parser("reset", help="the daily reset now (journaled with --by)")
    rs.add_argument("name")
    rs.add_argument("--by", required=True)
    rs.set_defaults(fn=cmd_site_reset)

    g = sub.add_parser("gate").add_subparsers(dest="action", required=True).add_parser("add")
    g.add_argument("id")
    g.add_argument("--site", required=True)
    g.add_argument("--direction", default="both", choices=admin.DIRECTIONS)
    g.add_argument("--token-file", required=True)
    g.set_defaults(fn=cmd_gate_add)

    ps = sub.add_parser("pass").add_subparsers(dest="action", required=True)
    i = ps.add_parser("issue")
    i.add_argument("--site", required=True)
    i.add_argument("--holder", required=True)
    i.add_argument("--kind", default="visitor", choices=passes.KINDS)
    i.add_argument("--from", dest="valid_from")
    i.add_argument("--until", dest="valid_until")
    i.add_argument("--rotating", action="store_true",
                   help="the shown code changes every 30 s (signed passes only)")
    i.add_argument("--plain", action="store_true",
                   help="a plain random code checked online or by synced hash, not a signed pass")
    i.add_argument("--qr-text")
    i.add_argument("--png")
    i.set_defaults(fn=cmd_pass_issue)
    sh = ps.add_parser("show")
    sh.add_argument("id")
    sh.add_argument("--at")
    sh.add_argument("--qr-text", required=True)
    sh.add_argument("--png")
    sh.set_defaults(fn=cmd_pass_show)
    r = ps.add_parser("revoke")
    r.add_argument("id")
    r.set_defaults(fn=cmd_pass_revoke)

    k = sub.add_parser("keys").add_subparsers(dest="action", required=True)
    k.add_parser("export").add_argument("--out", required=True)
    k.add_parser("rotate")
    k.choices["export"].set_defaults(fn=cmd_keys_export)
    k.choices["rotate"].set_defaults(fn=cmd_keys_rotate)

    a = sub.add_parser("admin").add_subparsers(dest="action", required=True).add_parser("add")
    a.add_argument("user")
    a.add_argument("--password-file", required=True)
    a.add_argument("--role", default="admin", choices=admin.ROLES,
                   help="admin: everything; reception: passes and events only")
    a.set_defaults(fn=cmd_admin_add)

    sv = sub.add_parser("serve")
    sv.add_argument("--listen", default="127.0.0.1:8080")
    sv.add_argument("--tls-cert")
    sv.add_argument("--tls-key")
    sv.add_argument("--metrics-token-file", help="serve GET /metrics to this bearer token "
                    "(one line, >= 16 characters); /metrics is off without it")
    sv.set_defaults(fn=cmd_serve)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(args.db, args.secret_file)
        fn: Callable[[Settings, argparse.Namespace], int] = args.fn
        return fn(settings, args)
    except (UsageError, InputError, SettingsError, security.SecretError, SchemaError) as exc:
        print(f"gate-server: error: {exc}", file=sys.stderr)
        return 2
    except DBAPIError as exc:
        # Unreachable database, lost connection, a concurrent change: one line, not a trace.
        first = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        print(f"gate-server: database error: {first}", file=sys.stderr)
        return 1
