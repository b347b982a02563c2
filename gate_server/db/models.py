"""The data model: sites, gates, passes (credentials), events, admins, server settings.

Codes and tokens are never stored in clear: passes keep the SHA-256 of their code and of
their page token, gates the SHA-256 of their bearer token.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAME_LEN = 128


class Base(DeclarativeBase):
    pass


class ServerSetting(Base):
    __tablename__ = "server_settings"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Site(Base):
    __tablename__ = "sites"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(NAME_LEN), unique=True)
    # Bumped by every change to one of the site's passes; a pass row carries the revision
    # of its last change, so a delta sync is "revision > cursor" on an index.
    revision: Mapped[int] = mapped_column(BigInteger, default=0)
    # Deltas are complete only for cursors >= floor (older tombstones were purged).
    floor: Mapped[int] = mapped_column(BigInteger, default=0)
    # Random per site: a cursor from another database (restore, reinstall) is not trusted.
    epoch: Mapped[str] = mapped_column(String(32))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    capacity: Mapped[int | None] = mapped_column(Integer, nullable=True)
    limit_pct: Mapped[float | None] = mapped_column(Float, nullable=True)
    headcount: Mapped[int | None] = mapped_column(Integer, nullable=True)
    occupancy: Mapped[str] = mapped_column(String(8), default="off")
    anti_passback: Mapped[str] = mapped_column(String(8), default="off")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Occupancy (issue 12): people inside by the server's reckoning, the timed
    # anti-passback window, and the daily reset ("HH:MM" in the site's time zone).
    inside: Mapped[int] = mapped_column(Integer, default=0)
    passback_window_s: Mapped[int] = mapped_column(Integer, default=0)
    reset_at: Mapped[str | None] = mapped_column(String(5), nullable=True, default="03:00")
    last_reset_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True),
                                                            nullable=True)


class Gate(Base):
    __tablename__ = "gates"
    id: Mapped[str] = mapped_column(String(NAME_LEN), primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    direction: Mapped[str] = mapped_column(String(8), default="both")
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    software_version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    cache_age_s: Mapped[float | None] = mapped_column(Float, nullable=True)


class Pass(Base):
    __tablename__ = "passes"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"))
    holder: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16), default="visitor")
    valid_from: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    valid_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    open_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    code_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    page_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    revision: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Signed passes (GP1): the claims are re-signed on demand (Ed25519 is deterministic),
    # so the database never holds a usable pass text; these columns rebuild the claims.
    signed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    rotating: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    kid: Mapped[str | None] = mapped_column(String(8), nullable=True)
    claim_from: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    claim_until: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    __table_args__ = (Index("passes_site_revision", "site_id", "revision"),)


class SigningKey(Base):
    """An Ed25519 pass-signing key. The private half is AES-GCM-encrypted under a key derived
    from the server's secret file (0600, outside the database): a database dump alone
    cannot mint passes."""

    __tablename__ = "signing_keys"
    kid: Mapped[str] = mapped_column(String(8), primary_key=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary(32))
    private_sealed: Mapped[bytes] = mapped_column(LargeBinary(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Event(Base):
    __tablename__ = "events"
    n: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(256), unique=True)  # the idempotency key
    gate_id: Mapped[str] = mapped_column(String(NAME_LEN), index=True)
    at: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)  # the event exactly as the gate sent it (JSON)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Admin(Base):
    __tablename__ = "admins"
    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # "admin" manages everything; "reception" issues and revokes passes and sees events.
    role: Mapped[str] = mapped_column(String(16), default="admin", server_default="admin")


class WebSession(Base):
    """A signed-in admin page session, server-side so logout and expiry really end it."""

    __tablename__ = "web_sessions"
    id_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)  # cookie never stored
    username: Mapped[str] = mapped_column(ForeignKey("admins.username", ondelete="CASCADE"),
                                          index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class Passage(Base):
    """One online grant that may become a passage: an entry holds a place until the gate
    reports whether the door opened (or the hold times out and counts as opened)."""

    __tablename__ = "passages"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"))
    gate_id: Mapped[str] = mapped_column(String(NAME_LEN))
    pass_id: Mapped[str] = mapped_column(String(32))
    direction: Mapped[str] = mapped_column(String(3))           # in | out
    state: Mapped[str] = mapped_column(String(8))               # pending|opened|unused|assumed
    prev_inside: Mapped[bool] = mapped_column(Boolean)          # the pass's presence before
    # Paid from the gate's own lease (the site was otherwise full): the gate's `spent`
    # counter counts it, so the passage itself never changes `inside`.
    paid: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    __table_args__ = (Index("passages_site_state", "site_id", "state"),
                      Index("passages_gate_created", "gate_id", "created_at"))


class Presence(Base):
    """Anti-passback: is this pass inside its site, and when did it last enter."""

    __tablename__ = "presence"
    pass_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    inside: Mapped[bool] = mapped_column(Boolean, default=False)
    entered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class GateLedger(Base):
    """The counters a gate last reported for its offline spending (cumulative, per epoch)."""

    __tablename__ = "gate_ledgers"
    gate_id: Mapped[str] = mapped_column(String(NAME_LEN), primary_key=True)
    epoch: Mapped[str] = mapped_column(String(64))
    spent: Mapped[int] = mapped_column(BigInteger, default=0)
    unused: Mapped[int] = mapped_column(BigInteger, default=0)
    exits: Mapped[int] = mapped_column(BigInteger, default=0)
    next_seq: Mapped[int] = mapped_column(BigInteger, default=1)
    reported_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Lease(Base):
    """A cap on a gate's cumulative `spent` counter. Unsettled, it holds back
    (limit - spent) places: either still spendable or possibly spent and not yet reported.
    Settled only when the gate reports it will never spend it again (or by a reset after
    reclaim_at, when whoever it admitted is assumed gone)."""

    __tablename__ = "leases"
    n: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    gate_id: Mapped[str] = mapped_column(String(NAME_LEN))
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"))
    epoch: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(BigInteger)
    limit: Mapped[int] = mapped_column(BigInteger)
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    reclaim_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))  # expiry + margin
    settled: Mapped[bool] = mapped_column(Boolean, default=False)
    __table_args__ = (Index("leases_site_settled", "site_id", "settled"),
                      Index("leases_gate_seq", "gate_id", "epoch", "seq"))
