"""Reply campaign: the gate's server client against a junk server on 127.0.0.1 that answers
every request with a malformed reply (fuzz/malform.py), per endpoint:

- verify: the real chain (server first, then cache, then list) must decide exactly what the
  offline policy decides with the server down; a grant it would not give is a wrong grant;
- credentials: a sync must leave the credential cache exactly as it was;
- events: an event marked uploaded without a contract acknowledgement is lost.

    python -m fuzz.replies [verify|credentials|events ...] [--n 10000] [--seed 1]
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import socket
import sqlite3
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fuzz.common import Result, progress, report, rng_for, timed_result
from fuzz.junkserver import JunkServer
from fuzz.malform import (
    credentials_reply,
    dumps,
    events_reply,
    verify_reply,
    verify_valid,
)
from fuzz.world import DAY, NOW, base_sections, iso, scratch_dir, sha, write_toml
from gate.config import Config, load_config
from gate.verify.credentials import CredentialStore, load_allowlist_into

PROPERTIES = {"verify": ["uncaught exceptions", "wrong grants"],
              "credentials": ["uncaught exceptions", "cache changed by junk"],
              "events": ["uncaught exceptions", "lost events"]}
TIMEOUT_S = 0.25      # the door's budget in this campaign
CODES = [b"L-VALID", b"L-OLD", b"C-VALID", b"C-REVOKED", b"C-RED", b"C-STALE-NOT", b"UNKNOWN"]

# -- adapters: the only places that know how the gate's server parts are built -------------


def make_client(cfg: Config) -> Any:
    from gate.central.client import ServerClient, read_token

    assert cfg.server is not None
    return ServerClient(cfg.server, cfg.gate.id, read_token(cfg.server.token_file))


def make_chain(cfg: Config, store: CredentialStore) -> Any:
    from gate.verify import build_chain
    from gate.verify.online import ServerCheck

    assert cfg.server is not None
    online = ServerCheck(make_client(cfg), cfg.server.timeout_s, cfg.policy.status)
    return build_chain(cfg, store, online), online


def seed_cache(store: CredentialStore) -> None:
    from gate.verify.credentials import SERVER, Credential
    from gate.verify.online import LAST_SYNC_KEY

    rows = [Credential(sha(b"C-VALID"), SERVER, "c1", "Cache valid"),
            Credential(sha(b"C-REVOKED"), SERVER, "c2", "Cache revoked", revoked=True),
            Credential(sha(b"C-RED"), SERVER, "c3", "Cache red", status="red")]
    store.replace(SERVER, rows, {LAST_SYNC_KEY: str(time.time()), "server.cursor": "c-0"})


def sync_once(cfg: Config, client: Any, store: CredentialStore) -> None:
    from gate.central.sync import CredentialSync

    CredentialSync(client, store, 3600).sync_once()


def upload_once(cfg: Config, client: Any, journal: Any) -> None:
    from gate.central.sync import EventUploader

    EventUploader(client, journal, 1, 5, 1).upload_once()


def unavailable() -> type[Exception]:
    from gate.central.client import ServerUnavailable

    return ServerUnavailable

# ------------------------------------------------------------------------------------------


def free_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"  # closed again: connection refused


@contextlib.contextmanager
def server_gate(url: str, offline: str) -> Iterator[tuple[Config, CredentialStore]]:
    with scratch_dir() as tmp:
        root = Path(tmp)
        allow = root / "allow.csv"
        allow.write_text("code,label,valid_from,valid_until\n"
                         f"L-VALID,List valid,{iso(NOW - DAY)},{iso(NOW + DAY * 365)}\n"
                         f"L-OLD,List expired,{iso(NOW - 9 * DAY)},{iso(NOW - DAY)}\n")
        (root / "token").write_text("fuzz-token\n")
        sections = base_sections(root, allow)
        sections["server"] = {"url": url, "token_file": str(root / "token"),
                              "timeout_s": TIMEOUT_S, "sync_timeout_s": 1}
        sections["policy"] = {"offline": offline}
        cfg = load_config(write_toml(root / "gate.toml", sections))
        store = CredentialStore(cfg.credentials_path)
        load_allowlist_into(store, allow)
        seed_cache(store)
        try:
            yield cfg, store
        finally:
            store.close()


def offline_verdicts(offline: str) -> dict[bytes, str]:
    """What the chain decides for each code with nobody listening on the server's port."""
    with server_gate(free_url(), offline) as (cfg, store):
        chain, online = make_chain(cfg, store)
        try:
            return {c: chain.check(sha(c), c, time.time()).verdict for c in CODES}
        finally:
            online.close()


def run_verify(n: int, seed: int) -> Result:
    result = Result("replies: POST /v1/verify")
    with timed_result(result), JunkServer(dumps(verify_valid(rng_for(seed)))) as junk:
        for offline in ("cache", "deny"):
            expected = offline_verdicts(offline)
            with server_gate(junk.url, offline) as (cfg, store):
                chain, online = make_chain(cfg, store)
                share = n // 2 if offline == "cache" else n - n // 2
                for i in range(share):
                    rng = rng_for(seed, "verify", offline, i)
                    junk.reply = verify_reply(rng, TIMEOUT_S)
                    code = rng.choice(CODES)
                    try:
                        decision = chain.check(sha(code), code, time.time())
                    except Exception as exc:
                        result.crashed(f"{junk.reply.klass} ({offline})", exc)
                        continue
                    if decision.verdict == "grant" and expected[code] != "grant":
                        result.fail("wrong grants", f"{junk.reply.klass}: {code!r} granted "
                                    f"by {decision.source}, offline policy: {expected[code]}")
                        result.info[f"wrong grants from: {junk.reply.klass}"] += 1
                    result.info["answered by the junk server (source server)"] += \
                        decision.source == "server"
                    progress(i, share, 5000)
                online.close()
        result.cases = n
        result.info["requests the junk server saw"] = junk.requests
        result.info["redirects followed"] = junk.bait_requests
    return result


def dump_cache(path: Path) -> list[Any]:
    """Every row of every table, except the time of the last successful sync and the ETag:
    an HTTP caching hint that changes with every request's `since`, not cache content."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        out: list[Any] = []
        for t in sorted(tables):
            rows = sorted(map(repr, db.execute(f'SELECT * FROM "{t}"')))
            out.append((t, [r for r in rows if "last_sync" not in r and "etag" not in r]))
        return out


def run_credentials(n: int, seed: int) -> Result:
    result = Result("replies: GET /v1/credentials")
    failed = unavailable()
    with timed_result(result), JunkServer(b"{}") as junk, \
            server_gate(junk.url, "cache") as (cfg, store):
        client = make_client(cfg)
        before = dump_cache(cfg.credentials_path)
        for i in range(n):
            rng = rng_for(seed, "credentials", i)
            junk.reply = credentials_reply(rng, 1.0)
            try:
                sync_once(cfg, client, store)
            except failed:
                pass
            except Exception as exc:
                result.crashed(junk.reply.klass, exc)
            after = dump_cache(cfg.credentials_path)
            if after != before:
                result.fail("cache changed by junk", junk.reply.klass)
                result.info[f"cache changed by: {junk.reply.klass}"] += 1
                store.close()
                seed_cache(store)  # back to the known cache for the next case
                before = dump_cache(cfg.credentials_path)
            progress(i, n, 2000)
        client.close()
        result.cases = n
        result.info["redirects followed"] = junk.bait_requests
    return result


def run_events(n: int, seed: int) -> Result:
    from gate.journal import Journal

    result = Result("replies: POST /v1/events")
    failed = unavailable()
    with timed_result(result), JunkServer(dumps({"stored": 5, "duplicates": 0})) as junk, \
            server_gate(junk.url, "cache") as (cfg, store):
        client = make_client(cfg)
        journal = Journal(cfg.journal_path, cfg.gate.id)
        for i in range(n):
            rng = rng_for(seed, "events", i)
            while len(journal.pending(5)) < 5:
                journal.record("system", event="fuzz", case=i)
            junk.reply = events_reply(rng, 5, 1.0)
            try:
                upload_once(cfg, client, journal)
            except failed:
                pass
            except Exception as exc:
                result.crashed(junk.reply.klass, exc)
            lost = 5 - len(journal.pending(5))
            if lost:
                result.failures["lost events"] += lost
                result.examples.setdefault("lost events", junk.reply.klass)
                result.info[f"events lost after: {junk.reply.klass}"] += lost
            progress(i, n, 2000)
        journal.close()
        client.close()
        result.cases = n
        result.info["redirects followed"] = junk.bait_requests
    return result


RUNS = {"verify": run_verify, "credentials": run_credentials, "events": run_events}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fuzz.replies", description=__doc__)
    parser.add_argument("endpoints", nargs="*", metavar="ENDPOINT",
                        help=f"any of {', '.join(RUNS)} (default: all)")
    parser.add_argument("--n", type=int, default=10_000, help="replies per endpoint")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="300 replies per endpoint")
    args = parser.parse_args(argv)
    logging.disable(logging.CRITICAL)  # the gate's warnings about each junk reply: noise here
    n = 300 if args.quick else args.n
    rc = 0
    unknown = set(args.endpoints) - set(RUNS)
    if unknown:
        parser.error(f"unknown endpoint {', '.join(sorted(unknown))}")
    for name in args.endpoints or RUNS:
        rc |= report(RUNS[name](n, args.seed), PROPERTIES[name])
        print(flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
