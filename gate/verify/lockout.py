"""Lockout at the door: too many denials in a short time lock the scanner for a cooldown, so
nobody can try codes at machine speed (brute force, or a replayed list of guesses)."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from ..contracts import Reason, Source
from .decision import Decision

log = logging.getLogger(__name__)

LOCKED_OUT: Reason = "locked_out"
SOURCE: Source = "lockout"

# on_change(locked, denials): the lockout began (True) or its cooldown ended (False).
LockoutListener = Callable[[bool, int], None]


@dataclass(frozen=True)
class LockoutRule:
    """`max_denials` denials within `window_s` lock for `cooldown_s`; max_denials 0: off."""

    max_denials: int
    window_s: float
    cooldown_s: float


class Lockout:
    """Counts denials on the monotonic clock (a wall clock set back must not reopen it).

    While locked every code is denied `locked_out` without asking anyone (not the server:
    a flood must not become a flood of requests); those denials do not extend the lockout,
    and the window starts empty after it. Only scanned codes pass here: the exit and staff
    buttons are people inside and never locked out. Thread-safe.
    """

    def __init__(self, rule: LockoutRule, on_change: LockoutListener | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rule = rule
        self.on_change = on_change
        self._clock = clock
        self._lock = threading.Lock()
        self._denials: deque[float] = deque()
        self._until: float | None = None  # end of the cooldown while locked

    @property
    def locked(self) -> bool:
        self.poll()
        return self._until is not None

    def refuse(self) -> Decision | None:
        """A `locked_out` denial while locked, else None (go on and verify)."""
        return Decision(verdict="deny", reason=LOCKED_OUT, source=SOURCE) if self.locked \
            else None

    def record(self, decision: Decision) -> None:
        """Count a decision the verifiers made (a deny counts; nothing else does)."""
        if decision.verdict != "deny" or decision.reason == LOCKED_OUT or \
                self.rule.max_denials <= 0:
            return
        now = self._clock()
        with self._lock:
            self._denials.append(now)
            while self._denials and now - self._denials[0] > self.rule.window_s:
                self._denials.popleft()
            if self._until is not None or len(self._denials) < self.rule.max_denials:
                return
            count = len(self._denials)
            self._until = now + self.rule.cooldown_s
            self._denials.clear()
        log.warning("lockout: %d denials within %.0f s; the scanner is locked for %.0f s",
                    count, self.rule.window_s, self.rule.cooldown_s)
        self._notify(True, count)

    def poll(self) -> None:
        """End the cooldown once it is over (the frame loop calls this often)."""
        with self._lock:
            if self._until is None or self._clock() < self._until:
                return
            self._until = None
        log.warning("lockout: cooldown over, the scanner verifies again")
        self._notify(False, 0)

    def reconfigure(self, rule: LockoutRule) -> None:
        """A reload: the new rule applies from now; a lockout in progress keeps its end."""
        with self._lock:
            self.rule = rule

    def _notify(self, locked: bool, denials: int) -> None:
        if self.on_change is None:
            return
        try:
            self.on_change(locked, denials)
        except Exception:  # the lockout itself must hold even if the journal fails
            log.exception("lockout: reporting the change failed")
