"""A simulated fleet in a throwaway PostgreSQL database, seeded in bulk: sites, gates with
tokens, passes, pass changes and a million events (for bench/server_scale.py)."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import create_engine, insert, text

from gate_server.core import security
from gate_server.db.models import Gate, Pass, Site
from gate_server.db.session import make_sessionmaker, migrate, transaction
from gate_server.services import sync
from gate_server.services.admin import bind_secret
from tests.server.pg import PgCluster

NOW = datetime.now(timezone.utc)


@dataclass
class GateState:
    """What one simulated gate keeps between requests."""

    index: int
    id: str
    token: str
    etag: str
    cursor: str
    seq: int = 0

    def next_event(self) -> dict[str, Any]:
        """A decision event shaped like the gate's journal upload."""
        self.seq += 1
        return {"id": f"{self.id}-{self.seq}-{secrets.token_hex(4)}",
                "at": datetime.now(timezone.utc).isoformat(timespec="milliseconds")
                .replace("+00:00", "Z"),
                "gate": self.id, "kind": "decision", "verdict": "grant", "reason": "ok",
                "source": "cache", "label": "Visitor 0042", "credential_id": "p0123456789abcdef",
                "code_sha256": secrets.token_hex(32), "latency_ms": 23.4}


@dataclass
class Fleet:
    cluster: PgCluster
    url: str
    secret_file: Path
    sites: int
    gates: list[GateState]
    site_ids: list[int]

    def postmaster_pid(self) -> int:
        return int((self.cluster.dir / "data" / "postmaster.pid").read_text().split()[0])

    def dsn(self) -> str:
        return self.url.replace("postgresql+psycopg://", "postgresql://")


def seed_fleet(cluster: PgCluster, name: str, sites: int, gates: int,
               passes_per_site: int) -> Fleet:
    url = cluster.create_db(name)
    migrate(url)
    secret_file = cluster.dir / f"{name}.secret"
    security.create_secret(secret_file)
    engine = create_engine(url)
    sessions = make_sessionmaker(engine)
    tokens = [security.new_gate_token() for _ in range(gates)]
    with transaction(sessions) as s:
        # Bound here, once: servers started together would otherwise race to bind it.
        bind_secret(s, security.load_secret(secret_file))
        site_ids = list(s.scalars(insert(Site).returning(Site.id), [
            {"name": f"site-{k}", "revision": passes_per_site, "floor": 0,
             "epoch": secrets.token_hex(8), "timezone": "UTC", "occupancy": "off",
             "anti_passback": "off", "created_at": NOW} for k in range(sites)]))
        s.execute(insert(Gate), [
            {"id": f"gate-{i:05d}", "site_id": site_ids[i % sites], "direction": "both",
             "token_sha256": security.token_hash(tokens[i]), "created_at": NOW}
            for i in range(gates)])
        for sid in site_ids:
            rows = [{"id": "p" + secrets.token_hex(8), "site_id": sid,
                     "holder": f"Holder {r}", "kind": "staff", "revoked": False,
                     "code_sha256": secrets.token_hex(32), "page_sha256": secrets.token_hex(32),
                     "revision": r + 1, "created_at": NOW,
                     "valid_until": NOW + timedelta(days=365)} for r in range(passes_per_site)]
            for k in range(0, len(rows), 10_000):
                s.execute(insert(Pass), rows[k:k + 10_000])
    with engine.connect() as conn:
        conn.execute(text("ANALYZE"))
        conn.commit()
    engine.dispose()
    fleet = Fleet(cluster, url, secret_file, sites, [], site_ids)
    states = [site_state(fleet, k) for k in range(sites)]
    fleet.gates = [GateState(i, f"gate-{i:05d}", tokens[i], *states[i % sites])
                   for i in range(gates)]
    return fleet


def site_state(fleet: Fleet, index: int) -> tuple[str, str]:
    """(ETag, cursor) of a gate that holds the site's current list."""
    engine = create_engine(fleet.url)
    try:
        with make_sessionmaker(engine)() as s:
            site = s.get(Site, fleet.site_ids[index])
            assert site is not None
            return sync.etag(site), f"{site.epoch}-{site.revision}"
    finally:
        engine.dispose()


def change_passes(fleet: Fleet, index: int, n: int) -> None:
    """n passes of a site edited (validity extended) at once, each with a new revision, as
    the server's own issue/revoke would number them."""
    with psycopg.connect(fleet.dsn(), autocommit=False) as conn:
        conn.execute("""
            WITH s AS (UPDATE sites SET revision = revision + %(n)s WHERE id = %(sid)s
                       RETURNING revision),
                 p AS (SELECT id, row_number() OVER (ORDER BY revision) AS k FROM passes
                       WHERE site_id = %(sid)s ORDER BY revision LIMIT %(n)s)
            UPDATE passes SET revision = (SELECT revision FROM s) - %(n)s + p.k,
                   valid_until = valid_until + interval '1 day'
            FROM p WHERE passes.id = p.id""", {"n": n, "sid": fleet.site_ids[index]})


def insert_events(fleet: Fleet, n: int) -> int:
    """n decision events by COPY, then the events table's total size in bytes."""
    gates = [g.id for g in fleet.gates]
    with psycopg.connect(fleet.dsn(), autocommit=True) as conn:
        with conn.cursor() as cur:
            with cur.copy("COPY events (event_id, gate_id, at, kind, body, received_at) "
                          "FROM STDIN") as copy:
                for i in range(n):
                    e = fleet.gates[i % len(gates)].next_event()
                    copy.write_row((e["id"], e["gate"], e["at"], e["kind"],
                                    json.dumps(e, sort_keys=True, separators=(",", ":")), NOW))
            cur.execute("VACUUM ANALYZE events")
            cur.execute("SELECT pg_total_relation_size('events')")
            row = cur.fetchone()
            assert row is not None
            return int(row[0])

