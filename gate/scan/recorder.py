"""`[camera] record_dir`: frames worth replaying (a code read, or a code-like region the
second chance looked at), kept on a real gate so a technician can `gate replay` them against
a new config before it goes live.

Opt-in only: a recorded frame shows the passes in it. Files are written 0600 in a 0700
directory through a renamed temporary file, and only the newest ``keep`` are kept. Writing a
PNG costs milliseconds to tens of them, so it happens on a thread of its own behind a small
queue; a frame that finds the queue full is dropped (and counted), never waited for.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import tempfile
import threading
from collections import deque
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

QUEUE = 8
PREFIX = "frame-"


class FrameRecorder:
    def __init__(self, directory: Path, keep: int) -> None:
        self.directory = directory
        self.keep = keep
        self.recorded = 0
        self.dropped = 0
        directory.mkdir(parents=True, exist_ok=True)
        os.chmod(directory, 0o700)
        self._files: deque[Path] = deque(sorted(directory.glob(f"{PREFIX}*.png")))
        self._queue: queue.Queue[tuple[int, int, np.ndarray] | None] = queue.Queue(QUEUE)
        self._thread = threading.Thread(target=self._run, name="frame-recorder", daemon=True)
        self._thread.start()
        self._prune()

    def record(self, ts_ns: int, seq: int, plane: np.ndarray) -> bool:
        """Queue a copy of ``plane`` (the main stream's when there is one: replay downscales
        it); False if the queue was full."""
        try:
            self._queue.put_nowait((ts_ns, seq, plane.copy()))
            return True
        except queue.Full:
            self.dropped += 1
            return False

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued, then stop."""
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=timeout)
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            try:
                self._write(*item)
            except OSError as exc:  # a full card must not stop the gate: say so, go on
                log.error("record_dir %s: cannot write a frame: %s", self.directory, exc)

    def _write(self, ts_ns: int, seq: int, plane: np.ndarray) -> None:
        from PIL import Image

        # Names sort in capture order: monotonic ns, then the frame number.
        path = self.directory / f"{PREFIX}{ts_ns:020d}-{seq:08d}.png"
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".rec-", suffix=".png")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "wb") as f:
                Image.fromarray(plane, mode="L").save(f, format="PNG", compress_level=1)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        self._files.append(path)
        self.recorded += 1
        self._prune()

    def _prune(self) -> None:
        while len(self._files) > self.keep:
            with contextlib.suppress(FileNotFoundError):
                self._files.popleft().unlink()
