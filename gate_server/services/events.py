"""Event intake: idempotent by event id; an id already held for another gate is refused."""

from __future__ import annotations

import json
import logging
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from ..core.timeutil import format_time
from ..db.models import Event

log = logging.getLogger(__name__)


# ON CONFLICT DO NOTHING: a retried upload (lost reply) is a duplicate, not an error, and
# concurrent retries cannot fail each other. RETURNING names the rows that are new. Built
# once (per dialect): building it per upload cost more CPU than running it.
_INSERT = {postgres: insert(Event).on_conflict_do_nothing(index_elements=["event_id"])
           .returning(Event.event_id)
           for postgres, insert in ((True, pg_insert), (False, sqlite_insert))}


@dataclass
class Intake:
    accepted: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Stored:
    held: list[str]   # ids held for this gate: new, or stored by an earlier upload
    inserted: int     # rows new in this call


def store(session: Session, gate_id: str, events: list[dict[str, Any]], now: datetime) -> list[str]:
    """Insert the events (already validated) and return the ids held for this gate."""
    return store_counted(session, gate_id, events, now).held


def store_counted(session: Session | Connection, gate_id: str, events: list[dict[str, Any]],
                  now: datetime) -> Stored:
    if not events:
        return Stored([], 0)
    ids = [e["id"] for e in events]
    rows = [{"event_id": e["id"], "gate_id": gate_id, "at": e["at"], "kind": e["kind"],
             "body": json.dumps(e, sort_keys=True, separators=(",", ":")), "received_at": now}
            for e in events]
    dialect = session.dialect if isinstance(session, Connection) else session.get_bind().dialect
    new = set(session.scalars(_INSERT[dialect.name == "postgresql"], rows))
    rest = [i for i in ids if i not in new]
    # Only the ids that were already there need their owner looked up (usually none).
    owners = {eid: gid for eid, gid in session.execute(
        select(Event.event_id, Event.gate_id).where(Event.event_id.in_(rest)))} if rest else {}
    return Stored([i for i in ids if i in new or owners.get(i) == gate_id], len(new))


def alarm(session: Session, gate_id: str, name: str, now: datetime, **detail: Any) -> None:
    """A server-side alarm about a gate, stored among its events (kind "alarm")."""
    event = {"id": f"srv-{secrets.token_hex(12)}", "at": format_time(now), "gate": gate_id,
             "kind": "alarm", "alarm": name, "event": "raised", "source": "server", **detail}
    store(session, gate_id, [event], now)
    log.warning("alarm %s for gate %s", name, gate_id)
