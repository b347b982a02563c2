"""Background traffic with the central server, off the door path: credential sync (pull into
the cache, atomically) and journal upload (the outbox, at least once), plus journal pruning."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from ..journal import Journal, to_rfc3339
from ..verify.credentials import SERVER, SHA256_HEX, Credential, CredentialStore
from ..verify.online import LAST_SYNC_KEY
from ..worker import Worker
from .client import CredentialsPage, ServerClient, ServerUnavailable

log = logging.getLogger(__name__)

CURSOR_KEY, ETAG_KEY = "server.cursor", "server.etag"


@dataclass(frozen=True)
class SyncResult:
    changed: bool          # False: 304, the cache was already current
    full: bool = False
    rows: int = 0


def parse_rfc3339(value: Any) -> float | None:
    """RFC 3339 (or null) to epoch seconds; anything else, the empty string included (it is
    neither a time nor "absent"), raises ValueError."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("time must be an RFC 3339 string")
    dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        raise ValueError("time without offset")
    return dt.timestamp()


def _field(row: dict[str, Any], key: str, kind: type) -> Any:
    """An optional row field of exactly the contract's type (null counts as absent)."""
    value = row.get(key)
    if value is not None and (not isinstance(value, kind) or
                              (isinstance(value, bool) and kind is not bool)):
        raise ValueError(f"{key}: {type(value).__name__}, not {kind.__name__}")
    return value


def to_credential(row: Any) -> Credential:
    """One row of a credentials page, checked against the contract's types."""
    if not isinstance(row, dict):
        raise ValueError("not an object")
    sha = _field(row, "code_sha256", str)
    if sha is None or not SHA256_HEX.match(sha.lower()):
        raise ValueError("bad code_sha256")
    cred_id = _field(row, "id", str)
    if not cred_id:
        raise ValueError("id: required string")
    label = _field(row, "label", str) or ""
    return Credential(code_sha256=sha.lower(), origin=SERVER, cred_id=cred_id,
                      label=label[:200],
                      valid_from=parse_rfc3339(_field(row, "valid_from", str)),
                      valid_until=parse_rfc3339(_field(row, "valid_until", str)),
                      revoked=bool(_field(row, "revoked", bool)),
                      status=_field(row, "status", str))


class CredentialSync(Worker):
    """Pulls /v1/credentials every `interval_s` with If-None-Match and `since`.

    A full list replaces the cache in one transaction and a delta is upserted in one, each
    together with its new cursor: a crash at any point leaves the previous cache whole.
    A malformed row rejects the whole page, full list or delta (the reply does not match the
    contract, so none of it is applied): a full list is streamed into its transaction, which
    the first bad row rolls back.
    """

    name = "credential-sync"

    def __init__(self, client: ServerClient, store: CredentialStore, interval_s: float) -> None:
        super().__init__()
        self.client = client
        self.store = store
        self.interval_s = interval_s
        self.last_error: str | None = None
        self.reachable: bool | None = None  # None until the first attempt

    def sync_once(self, progress: Callable[[str, int, int | None], None] | None = None
                  ) -> SyncResult:
        """One pull now; raises ServerUnavailable."""
        cursor, etag = self.store.get_meta(CURSOR_KEY), self.store.get_meta(ETAG_KEY)
        download = (lambda got, total: progress("download", got, total)) if progress else None
        page = self.client.credentials(cursor, etag, download)
        now = str(time.time())
        if page is None:
            self.store.set_meta({LAST_SYNC_KEY: now})
            return SyncResult(changed=False)
        return self._apply(page, now, progress)

    def _apply(self, page: CredentialsPage, now: str,
               progress: Callable[[str, int, int | None], None] | None) -> SyncResult:
        total = len(page.credentials)

        def rows() -> Iterator[Credential]:
            for i, row in enumerate(page.credentials):
                try:
                    yield to_credential(row)
                except ValueError as exc:  # raised inside the store's transaction: rolled back
                    raise ServerUnavailable("bad_reply", f"credentials[{i}]: {exc}") from None
                if progress and (i + 1) % 50_000 == 0:
                    progress("store", i + 1, total)

        meta = {CURSOR_KEY: page.cursor, LAST_SYNC_KEY: now, ETAG_KEY: page.etag or ""}
        if page.full:
            n = self.store.replace(SERVER, rows(), meta)
        else:
            n = self.store.upsert(SERVER, rows(), meta)
        if progress:
            progress("store", total, total)
        log.log(logging.INFO if n or page.full else logging.DEBUG,
                "sync: %s list, %d credentials stored", "full" if page.full else "delta", n)
        return SyncResult(changed=True, full=page.full, rows=n)

    def run_once(self) -> float:
        try:
            self.sync_once()
            if self.last_error:
                log.info("sync: server reachable again")
            self.last_error, self.reachable = None, True
        except ServerUnavailable as exc:
            if str(exc) != self.last_error:
                log.warning("sync: server unavailable (%s); keeping the cache", exc)
            self.last_error, self.reachable = str(exc), False
        return self.interval_s


class EventUploader(Worker):
    """Uploads journal events in batches; marks uploaded only what a 2xx JSON reply
    acknowledged (UploadReceipt.settle), and backs off exponentially on failure. The server
    de-duplicates by event id, so a crash between its 2xx and our mark, or a batch re-sent
    after a partial count, is harmless."""

    name = "event-upload"

    def __init__(self, client: ServerClient, journal: Journal, interval_s: float, batch: int,
                 max_backoff_s: float) -> None:
        super().__init__()
        self.client = client
        self.journal = journal
        self.interval_s = interval_s
        self.batch = batch
        self.max_backoff_s = max_backoff_s
        self.backoff_s = 0.0

    def upload_once(self) -> int:
        """Upload one batch; returns how many of its events were settled (marked uploaded or
        set aside). Raises ServerUnavailable, also when a 2xx acknowledged none of them."""
        pending = self.journal.pending(self.batch)
        if not pending:
            return 0
        settled = self._send(pending)
        if not settled:
            raise ServerUnavailable("not_acknowledged", "the reply acknowledged no event")
        return settled

    def _send(self, pending: list[tuple[int, dict[str, Any]]]) -> int:
        """Send `pending`, and settle exactly what the reply acknowledges. A 400 for the batch
        is bisected down to the events the server refuses alone, which are set aside (the
        dead-letter table), so one bad event cannot block the outbox and costs at most
        ~2 log2(batch) extra requests; the rest of the batch still goes up."""
        try:
            receipt = self.client.upload([event for _, event in pending])
        except ServerUnavailable as exc:
            if exc.reason != "http_400":
                raise
            if len(pending) == 1:
                self._set_aside(pending, "http_400")
                return 1
            mid = len(pending) // 2
            return self._send(pending[:mid]) + self._send(pending[mid:])
        seq_of = {str(event.get("id")): seq for seq, event in pending}
        marked, dead = receipt.settle(list(seq_of))
        self.journal.mark_uploaded([seq_of[i] for i in marked])
        if dead:
            self._set_aside([(seq_of[i], {"id": i}) for i in dead], "rejected")
        return len(marked) + len(dead)

    def _set_aside(self, events: list[tuple[int, dict[str, Any]]], reason: str) -> None:
        self.journal.set_aside([seq for seq, _ in events], reason)
        for _, event in events:
            log.error("upload: the server refuses event %s (%s); set aside as a dead letter, "
                      "kept locally", event.get("id"), reason)

    def run_once(self) -> float:
        try:
            sent = self.upload_once()
        except ServerUnavailable as exc:
            self.backoff_s = min(self.max_backoff_s, max(self.interval_s, self.backoff_s * 2))
            log.warning("upload: server unavailable (%s); retrying in %.0f s", exc,
                        self.backoff_s)
            return self.backoff_s
        self.backoff_s = 0.0
        return 0.0 if sent == self.batch else self.interval_s  # a full batch: drain on


class JournalPruner(Worker):
    """Keeps the journal bounded: deletes events older than the retention, only once they
    were uploaded when a server is configured (never an event still in the outbox)."""

    name = "journal-prune"

    def __init__(self, journal: Journal, retention_days: float, uploaded_only: bool,
                 interval_s: float = 3600.0) -> None:
        super().__init__()
        self.journal = journal
        self.retention = timedelta(days=retention_days)
        self.uploaded_only = uploaded_only
        self.interval_s = interval_s

    def run_once(self) -> float:
        before = to_rfc3339(datetime.now(timezone.utc) - self.retention)
        n = self.journal.prune(before, uploaded_only=self.uploaded_only)
        if n:
            log.info("journal: pruned %d events older than %s", n, before)
        return self.interval_s
