"""Keeps the credential store's list rows in step with the technician's allowlist file:
reloads when the file changes and on request (SIGHUP), off the door path."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

from ..errors import AllowlistError
from ..journal import Journal, SystemEvent
from .credentials import CredentialStore, load_allowlist_into
from .weakcodes import weak_code_warnings

log = logging.getLogger(__name__)
_RELOAD = object()  # stamp meaning "reload at the next look, whatever the file says"


class ListWatcher:
    """Background thread that polls the allowlist's (mtime, size, inode) and reloads it.

    A file that disappears or breaks while running keeps the last good list loaded and is
    reported loudly (log, journal `list_error`, and `on_fault(True)` until a good load calls
    `on_fault(False)`); at start (`load_now`) the same problems are fatal.
    """

    def __init__(self, store: CredentialStore, path: Path, interval_s: float,
                 journal: Journal, on_fault: Callable[[bool], None] | None = None) -> None:
        self.store = store
        self.on_fault = on_fault
        self.path = path
        self.interval_s = interval_s
        self.journal = journal
        self._stamp: object = _RELOAD
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="list-watch", daemon=True)

    def load_now(self) -> int:
        """Load the list (raises AllowlistError) and return how many credentials it holds."""
        stamp = self._file_stamp()
        result = load_allowlist_into(self.store, self.path)
        self._stamp = stamp
        for problem in result.problems:
            log.warning("allowlist: %s", problem)
        for warning in weak_code_warnings(self.path):  # loaded anyway: a warning, not a refusal
            log.warning("allowlist: %s", warning)
        self.journal.record(SystemEvent("list_loaded", extra={
            "credentials": result.count, "problems": result.problem_count}))
        log.info("allowlist %s: %d credentials, %d problems", self.path,
                 result.count, result.problem_count)
        self._fault(False)
        return result.count

    def start(self) -> None:
        self._thread.start()

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def trigger(self) -> None:
        """Reload now (from a signal handler: only sets an event)."""
        self._stamp = _RELOAD
        self._wake.set()

    def retarget(self, path: Path, interval_s: float) -> None:
        self.path, self.interval_s = path, interval_s
        self.trigger()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)

    def _file_stamp(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval_s)
            self._wake.clear()
            if self._stop.is_set():
                return
            if self._stamp is not _RELOAD and self._file_stamp() == self._stamp:
                continue
            try:
                self.load_now()
            except AllowlistError as exc:
                self._stamp = self._file_stamp()  # report once per change, not every poll
                log.error("%s; keeping the list loaded before", exc)
                self._fault(True)
                self.journal.record(SystemEvent("list_error", extra={"error": str(exc)}))
            except Exception:  # never let the watcher die: the watchdog would restart us
                self._stamp = self._file_stamp()
                log.exception("allowlist reload failed; keeping the list loaded before")
                self._fault(True)
                self.journal.record(SystemEvent("list_error", extra={"error": "unexpected error"}))

    def _fault(self, on: bool) -> None:
        if self.on_fault is not None:
            try:
                self.on_fault(on)
            except Exception:  # the indicator failing must not stop the reloads
                log.exception("allowlist: showing the fault failed")
