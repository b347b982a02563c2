"""`gate` command line: thin subcommands over the parts."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from .config import DEFAULT_CONFIG_PATH, describe, load_config
from .errors import GateError
from .exits import Exit, exit_for

log = logging.getLogger("gate")

Command = Callable[[argparse.Namespace], int]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = parser.parse_args(argv)
    # stderr: stdout is the commands' output (`journal --json`, `status --json`...)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(message)s")
    command: Command = args.command
    try:
        return command(args)
    except GateError as exc:
        code = exit_for(exc)
        print(f"{'config error:' + chr(10) if code == Exit.CONFIG else 'error: '}{exc}",
              file=sys.stderr)
        return code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gate", description="QR-code door gate controller")
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    def add(name: str, func: Command, help: str, config: bool = True) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        if config:
            p.add_argument("--config", type=Path, default=DEFAULT_CONFIG_PATH,
                           help=f"config file (default {DEFAULT_CONFIG_PATH})")
        p.set_defaults(command=func)
        return p

    add("run", cmd_run, "run the gate daemon")
    add("check-config", cmd_check_config, "validate the config and print the effective values")
    p = add("decode", cmd_decode, "decode QR codes in image files and print what they hold",
            config=False)
    p.add_argument("images", nargs="+", type=Path)
    p.add_argument("--backend", choices=["zxing", "pyzbar"], default=None,
                   help="decoder (default: the config's, else zxing)")
    p.add_argument("--config", type=Path, default=None, help="take the backend from this config")
    p = add("journal", cmd_journal, "print journal events")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--since", help="only events at or after this ISO 8601 time")
    p.add_argument("--kind", choices=["decision", "door", "alarm", "system"])
    add("sync", cmd_sync, "pull credentials from the central server now")
    p = add("status", cmd_status, "what the running daemon reports: state, last decision, door, "
            "cache age, server, frames per second")
    p.add_argument("--json", action="store_true", help="one JSON object, for scripts")
    add("relay-off", cmd_relay_off, "drive the relay locked and release the pin; systemd runs "
        "it after every stop of the daemon, a crash or SIGKILL included (ExecStopPost=)")
    p = add("test-relay", cmd_test_relay, "pulse the relay once (stop the daemon first)")
    p.add_argument("--seconds", type=float, default=None,
                   help="how long to release (default: [door] open_s)")
    p = add("test-camera", cmd_test_camera, "capture one frame, save it as PNG and measure the "
            "QR codes in it (stop the daemon first)")
    p.add_argument("--output", type=Path, default=None,
                   help="PNG to write (default: test-camera.png in the state dir)")
    p.add_argument("--skip", type=int, default=None,
                   help="frames to let pass first, for auto exposure (default: 1 s of frames; "
                   "0 for the files camera)")
    p = add("replay", cmd_replay, "decide on recorded frames with this config: decisions, read "
            "rate and per-frame timings; the relay is never touched, the server never asked")
    p.add_argument("frames", nargs="+", help="image files, directories or globs, in order")
    p.add_argument("--journal", type=Path, default=None,
                   help="also write the decisions to this journal file (never the gate's own)")
    p = add("preview", cmd_preview, "serve the aiming page: live frames with code boxes, pixels "
            "per module, sharpness, exposure (stop the daemon first: it holds the camera)")
    p.add_argument("--listen", default="127.0.0.1:8088",
                   help="HOST:PORT (default 127.0.0.1:8088; port 0 picks a free one); any "
                   "address but loopback needs the token printed at start")
    return parser


def cmd_run(args: argparse.Namespace) -> int:
    from .daemon import run_daemon
    return run_daemon(args.config)


def cmd_check_config(args: argparse.Namespace) -> int:
    from .preflight import preflight
    cfg = load_config(args.config)
    checked = preflight(cfg)  # as `run` does before it claims a pin; claims none itself
    if checked.pin_factory is not None:
        checked.pin_factory.close()
    print(f"# {args.config}: OK (allowlist: {checked.credentials} credentials, "
          f"{checked.problems} bad rows skipped)")
    print(describe(cfg))
    from .verify.weakcodes import weak_code_warnings
    for warning in weak_code_warnings(cfg.list.path):  # warned, never refused
        print(f"warning: [list] path: {warning}", file=sys.stderr)
    return Exit.OK


def cmd_decode(args: argparse.Namespace) -> int:
    from .scan.camera import load_luma
    from .scan.decode import make_decoder

    backend = args.backend or (load_config(args.config).decoder.backend if args.config else "zxing")
    decoder = make_decoder(backend)
    status = 0
    for path in args.images:
        try:
            codes = decoder.decode(load_luma(path))
        except GateError as exc:
            print(f"{path}: error: {exc}")
            status = 1
            continue
        print(f"{path}: {len(codes)} code{'s' if len(codes) != 1 else ''} ({decoder.name})")
        for code in codes:
            # This is the technician's own tool on a file they hold: showing the payload is
            # its purpose. The daemon never prints or stores one.
            print(f"  {code.text()!r} sha256={code.sha256} at {list(code.corners)}")
    return status


def cmd_journal(args: argparse.Namespace) -> int:
    from .journal import Journal, to_rfc3339

    cfg = load_config(args.config)
    since = None
    if args.since:
        try:
            since = to_rfc3339(datetime.fromisoformat(args.since))
        except ValueError:
            print(f"--since: {args.since!r} is not an ISO 8601 date or time", file=sys.stderr)
            return Exit.CONFIG
    if not cfg.journal_path.exists():
        print(f"no journal yet at {cfg.journal_path}", file=sys.stderr)
        return Exit.FAILURE
    journal = Journal(cfg.journal_path, cfg.gate.id)
    try:
        for event in journal.events(since=since, kind=args.kind):
            print(json.dumps(event) if args.json else format_event(event))
    finally:
        journal.close()
    return Exit.OK


def cmd_sync(args: argparse.Namespace) -> int:
    from .central.client import ServerClient, ServerUnavailable, read_token
    from .central.sync import CredentialSync
    from .verify.credentials import CredentialStore

    cfg = load_config(args.config)
    if cfg.server is None:
        print(f"{args.config}: no [server] section: nothing to sync from", file=sys.stderr)
        return Exit.CONFIG
    client = ServerClient(cfg.server, cfg.gate.id, read_token(cfg.server.token_file))
    store = CredentialStore(cfg.credentials_path)
    shown: dict[str, int] = {}

    def progress(stage: str, done: int, total: int | None) -> None:
        step = done * 10 // total if total else done // (1 << 20)  # tenths, or MiB
        if shown.get(stage) != step:
            shown[stage] = step
            unit = "bytes" if stage == "download" else "credentials"
            of = f" of {total}" if total else ""
            print(f"  {stage}: {done}{of} {unit}", file=sys.stderr)

    try:
        result = CredentialSync(client, store, cfg.server.sync_interval_s).sync_once(progress)
    except ServerUnavailable as exc:
        print(f"sync failed: server unavailable ({exc}); the cache is unchanged", file=sys.stderr)
        return Exit.FAILURE
    finally:
        client.close()
        store.close()
    if not result.changed:
        print("sync: the cache is current (304 Not Modified)")
    else:
        print(f"sync: {'full list' if result.full else 'changes'}: {result.rows} credentials "
              "stored")
    return Exit.OK


def cmd_status(args: argparse.Namespace) -> int:
    """Exit 0: running and fresh; 1: no status file; 3: stopped or not updated (like
    systemctl status)."""
    from .status import assess, format_status, read_status

    cfg = load_config(args.config)
    try:
        status = assess(read_status(cfg.status_path))
    except FileNotFoundError:
        print(f"no status file at {cfg.status_path}: the daemon has not run here yet",
              file=sys.stderr)
        return Exit.FAILURE
    except (OSError, ValueError) as exc:
        print(f"cannot read the status file {cfg.status_path}: {exc}", file=sys.stderr)
        return Exit.FAILURE
    print(json.dumps(status) if args.json else format_status(status))
    return Exit.OK if status["running"] else Exit.NEGATIVE


def cmd_relay_off(args: argparse.Namespace) -> int:
    """The stop path's lock (ExecStopPost=): it reads only the relay's wiring, leniently, so
    a config broken anywhere else (or in those keys: then the defaults, said on stderr)
    still gets the relay locked. Exit 0 locked, 1 the relay could not be driven."""
    from .door.pins import claim_relay_pin, make_pin_factory, read_relay_wiring

    wiring, warnings = read_relay_wiring(args.config)
    for warning in warnings:
        print(f"relay-off: warning: {warning}", file=sys.stderr)
    try:
        factory = make_pin_factory(wiring.pin_factory)
    except GateError as exc:  # the named driver is missing: let gpiozero pick one
        print(f"relay-off: warning: {exc}; trying gpiozero's default", file=sys.stderr)
        factory = make_pin_factory("default")
    relay = claim_relay_pin(wiring.relay_pin, wiring.relay_active_high, factory)
    try:
        relay.off()  # claimed is already locked; once more, for a line left released
    finally:
        relay.close()
    polarity = "active-high" if wiring.relay_active_high else "active-low"
    print(f"relay on pin {wiring.relay_pin}: locked ({polarity})")
    return Exit.OK


def cmd_test_relay(args: argparse.Namespace) -> int:
    from .selftest import run_relay_test

    cfg = load_config(args.config)
    if args.seconds is not None and not 0.1 <= args.seconds <= 600:
        print("--seconds must be within 0.1..600", file=sys.stderr)
        return Exit.CONFIG
    report = run_relay_test(cfg, args.seconds)
    print(f"relay test done: {' -> '.join(state for _, state in report.changes)}")
    return Exit.OK


def cmd_test_camera(args: argparse.Namespace) -> int:
    """Exit 0: a code was read; 3: a frame but no code; 1: no frame."""
    from .selftest import format_camera_report, run_camera_test

    cfg = load_config(args.config)
    output = args.output or cfg.gate.state_dir / "test-camera.png"
    report = run_camera_test(cfg, output, args.skip)
    print(format_camera_report(report))
    return Exit.OK if report.codes else Exit.NEGATIVE


def cmd_replay(args: argparse.Namespace) -> int:
    from .errors import CameraError
    from .replay import replay
    from .scan.camera import resolve_frames

    cfg = load_config(args.config)
    if args.journal is not None and args.journal.resolve() == cfg.journal_path.resolve():
        print("--journal must not be the gate's own journal", file=sys.stderr)
        return Exit.CONFIG
    try:
        paths = resolve_frames(args.frames)
    except CameraError as exc:  # a FRAMES argument that matches nothing
        print(f"error: {exc}", file=sys.stderr)
        return Exit.CONFIG
    replay(cfg, paths, args.journal)
    return Exit.OK


def cmd_preview(args: argparse.Namespace) -> int:
    from .preview import parse_listen, run_preview

    cfg = load_config(args.config)
    try:
        host, port = parse_listen(args.listen)
    except ValueError as exc:
        print(f"--listen: {exc}", file=sys.stderr)
        return Exit.CONFIG
    return run_preview(cfg, host, port)


def format_event(e: dict[str, object]) -> str:
    """One readable line per event, for security staff."""
    head = f"{e['at']} {e['kind']:<8}"
    if e["kind"] == "decision":
        return (f"{head} {str(e.get('verdict')).upper():<5} {e.get('reason')} "
                f"label={e.get('label')!r} source={e.get('source')} "
                f"latency={e.get('latency_ms')}ms "
                + (f"code={str(e['code_sha256'])[:12]}…" if e.get("code_sha256") else "code=-"))
    rest = {k: v for k, v in e.items() if k not in ("id", "at", "gate", "kind")}
    return f"{head} " + " ".join(f"{k}={v}" for k, v in rest.items())


if __name__ == "__main__":
    sys.exit(main())
