"""Background worker threads: the base class owns the thread, its timing, stopping and error
catching; a subclass only says what one round does."""

from __future__ import annotations

import logging
import threading

log = logging.getLogger(__name__)


class Worker:
    """Runs `run_once()` in a daemon thread until closed; `run_once` returns the seconds to
    wait before the next round. An exception is logged and retried after `error_delay_s`,
    so a worker never dies of a bad reply."""

    name = "worker"
    error_delay_s = 5.0

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)

    def run_once(self) -> float:
        raise NotImplementedError

    def start(self) -> None:
        self._thread.start()

    def trigger(self) -> None:
        """Run the next round now (safe from a signal handler)."""
        self._wake.set()

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def close(self, timeout: float = 2.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=timeout)

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                delay = self.run_once()
            except Exception:
                log.exception("%s: round failed", self.name)
                delay = self.error_delay_s
            if self._wake.wait(delay):
                self._wake.clear()
