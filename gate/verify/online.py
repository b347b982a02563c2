"""Online verification with a hard time budget, the offline policy, and the synced cache."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Literal

from ..central.client import ServerClient, ServerUnavailable, VerifyAnswer
from ..contracts import status_reason
from ..journal import utc_now
from .credentials import SERVER, CredentialStore
from .decision import Decision, Verdict, stricter
from .local import judge

log = logging.getLogger(__name__)

LAST_SYNC_KEY = "server.last_sync"  # epoch seconds of the last successful credential sync


def apply_status(verdict: Verdict, reason: str, status: str | None,
                 status_map: dict[str, Verdict]) -> tuple[Verdict, str]:
    """The stricter of a verdict and the verdict its status colour maps to (deny > staff >
    grant), so a colour can never turn a deny into a grant. An unknown colour maps to deny:
    the gate never guesses in the open direction."""
    if status is None:
        return verdict, reason
    strict = stricter(verdict, status_map.get(status, "deny"))
    return (verdict, reason) if strict == verdict else (strict, status_reason(status))


class ServerCheck:
    """Asks the central server, and answers within `timeout_s` whatever the network does.

    Each request runs on its own short-lived thread and the door path waits on it for at most
    the budget: requests' own (connect, read) timeouts apply per phase and per address, so
    they alone cannot bound the total. A late request is abandoned; the reply reader ends it
    at its deadline. No fixed pool: abandoned requests on a pool of N workers made the next
    verify queue behind them. At most `max_in_flight` requests run at once (bounded threads
    and memory); beyond that the server counts as unavailable ("busy") at once.
    """

    def __init__(self, client: ServerClient, timeout_s: float,
                 status_map: dict[str, Verdict], max_in_flight: int = 4) -> None:
        self.client = client
        self.timeout_s = timeout_s
        self.status_map = status_map
        self.reachable: bool | None = None  # None until the first attempt
        self._slots = threading.BoundedSemaphore(max_in_flight)

    def check(self, code_sha256: str, code: bytes, now: float) -> Decision:
        """A decision from the server, or ServerUnavailable."""
        started = time.monotonic()
        if not self._slots.acquire(blocking=False):
            self._set_reachable(False, "busy")
            raise ServerUnavailable("busy", "too many requests still in flight")
        future: Future[VerifyAnswer] = Future()
        threading.Thread(target=self._ask, args=(future, code, utc_now()), name="verify",
                         daemon=True).start()
        try:
            answer = future.result(timeout=self.timeout_s)
        except FutureTimeout:
            self._set_reachable(False, "timeout")
            raise ServerUnavailable("timeout",
                                    f"no answer in {time.monotonic() - started:.2f} s") from None
        except ServerUnavailable as exc:
            self._set_reachable(False, str(exc))
            raise
        self._set_reachable(True)
        verdict, reason = apply_status(answer.decision, answer.reason,  # type: ignore[arg-type]
                                       answer.status, self.status_map)
        return Decision(verdict=verdict, reason=reason, source="server", label=answer.label,
                        credential_id=answer.credential_id, open_s=answer.open_s,
                        occupancy=answer.occupancy)

    def _ask(self, future: Future[VerifyAnswer], code: bytes, scanned_at: str) -> None:
        try:
            future.set_result(self.client.verify(code, scanned_at, self.timeout_s))
        except ServerUnavailable as exc:
            future.set_exception(exc)
        except Exception as exc:  # a bug or a hostile reply's surprise: still only "unavailable"
            log.error("verify: unexpected %s; treated as server unavailable",
                      type(exc).__name__)
            future.set_exception(ServerUnavailable("error", type(exc).__name__))
        finally:
            self._slots.release()

    def _set_reachable(self, ok: bool, why: str = "") -> None:
        if ok != self.reachable:  # log changes, not every failure: the door may be busy
            if ok:
                log.info("central server reachable")
            else:
                log.warning("central server unavailable (%s); offline policy applies", why)
        self.reachable = ok

    def close(self) -> None:
        self.client.close()


class ServerFirst:
    """The server decides when it can; otherwise the offline policy: `cache` lets the next
    verifiers (synced cache, then the list) decide, `deny` refuses."""

    def __init__(self, online: ServerCheck, offline: Literal["cache", "deny"]) -> None:
        self.online = online
        self.offline = offline

    def check(self, code_sha256: str, code: bytes, now: float) -> Decision | None:
        try:
            return self.online.check(code_sha256, code, now)
        except Exception:  # ServerUnavailable, or anything unforeseen: the policy still decides
            if self.offline == "deny":
                return Decision(verdict="deny", reason="offline", source="policy")
            return None


class CacheVerifier:
    """Credentials synced from the server. A cache not refreshed within `max_age_s` no longer
    grants (reason cache_stale); its denials and revocations still hold."""

    def __init__(self, store: CredentialStore, max_age_s: float,
                 status_map: dict[str, Verdict]) -> None:
        self.store = store
        self.max_age_s = max_age_s
        self.status_map = status_map

    def age_s(self, now: float) -> float | None:
        last = self.store.get_meta(LAST_SYNC_KEY)
        return None if last is None else max(0.0, now - float(last))

    def check(self, code_sha256: str, code: bytes, now: float) -> Decision | None:
        cred = self.store.lookup(code_sha256, SERVER)
        if cred is None:
            return None
        decision = judge(cred, now, source="cache")
        verdict, reason = apply_status(decision.verdict, decision.reason, cred.status,
                                       self.status_map)
        if verdict != decision.verdict:
            decision = dataclasses.replace(decision, verdict=verdict, reason=reason)
        age = self.age_s(now)
        if decision.granted and (age is None or age > self.max_age_s):
            return Decision(verdict="deny", reason="cache_stale", source="cache",
                            label=decision.label, credential_id=decision.credential_id)
        return decision
