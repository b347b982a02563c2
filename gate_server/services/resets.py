"""The daily occupancy reset, run by `gate-server serve` in a background thread."""

from __future__ import annotations

import logging
import threading

from sqlalchemy.orm import Session, sessionmaker

from ..core.timeutil import Clock
from ..db.session import transaction
from .occupancy import run_due_resets

log = logging.getLogger(__name__)


class ResetScheduler:
    """Checks every `interval_s` whether a site's reset time has passed. The check itself
    (`occupancy.run_due_resets`) is idempotent and catches up after downtime, so a missed
    tick only delays a reset by one interval."""

    def __init__(self, sessions: sessionmaker[Session], clock: Clock,
                 interval_s: float = 30.0) -> None:
        self._sessions, self._clock, self._interval = sessions, clock, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="occupancy-reset", daemon=True)

    def tick(self) -> list[str]:
        with transaction(self._sessions) as session:
            return run_due_resets(session, self._clock())

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                for name in self.tick():
                    log.info("daily occupancy reset at site %s", name)
            except Exception:  # a lost database must not end the thread: retry next tick
                log.exception("occupancy reset check failed")
            self._stop.wait(self._interval)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
