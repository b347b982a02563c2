"""Frame sources: the Pi camera (picamera2, lores Y plane) and image files (the simulated camera)."""

from __future__ import annotations

import glob
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..config import CameraSection
from ..errors import CameraError, CameraStalled

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


@dataclass(frozen=True)
class Frame:
    """One luma frame: a 2-D uint8 array, its capture time (monotonic ns) and its number."""

    luma: np.ndarray = field(repr=False)
    ts_ns: int
    seq: int

    def __post_init__(self) -> None:
        if self.luma.ndim != 2 or self.luma.dtype != np.uint8:
            raise ValueError(f"a frame is a 2-D uint8 luma plane, got {self.luma.dtype} "
                             f"{self.luma.shape}")


class FrameSource(Protocol):
    """Anything that yields frames; read() returns None when the source has ended."""

    def read(self) -> Frame | None: ...

    def close(self) -> None: ...


class FileFrameSource:
    """Replays PNG/JPEG files as camera frames, paced at `fps` (the simulated camera)."""

    def __init__(self, pattern: str | Path, fps: float, loop: bool = False,
                 stop: threading.Event | None = None,
                 clock_ns: Callable[[], int] = time.monotonic_ns,
                 wait: Callable[[float], bool] | None = None) -> None:
        self.pattern = pattern
        self.paths = resolve_image_paths(pattern)
        self.interval_ns = int(1e9 / fps)
        self.loop = loop
        self._stop = stop or threading.Event()
        # Injectable so tests can check pacing on a fake clock: wait(s) -> True when stopped.
        self._clock_ns = clock_ns
        self._wait = wait or self._stop.wait
        self._cache: dict[Path, np.ndarray] = {}
        self._index = 0
        self._seq = 0
        self._next_ns = clock_ns()

    def read(self) -> Frame | None:
        if self._index >= len(self.paths):
            if not self.loop:
                return None
            self._index = 0
            self._relist()
        delay = (self._next_ns - self._clock_ns()) / 1e9
        if delay > 0 and self._wait(delay):
            return None
        self._next_ns = max(self._next_ns + self.interval_ns, self._clock_ns())
        path = self.paths[self._index]
        self._index += 1
        luma = self._cache.get(path)
        if luma is None:
            luma = load_luma(path)
            if self.loop:  # replaying the same files: decode each once
                self._cache[path] = luma
        self._seq += 1
        return Frame(luma=luma, ts_ns=self._clock_ns(), seq=self._seq)

    def _relist(self) -> None:
        """Looping: list the files again, so images added to (or removed from) a frames
        directory are shown from the next round (tests drive a running gate this way)."""
        try:
            self.paths = resolve_image_paths(self.pattern)
        except CameraError:
            return  # emptied for a moment: keep replaying what was there
        self._cache = {p: luma for p, luma in self._cache.items() if p in self.paths}

    def close(self) -> None:
        self._cache.clear()


def resolve_image_paths(pattern: str | Path) -> list[Path]:
    """A directory (its images, sorted by name) or a glob; an empty result is an error."""
    p = Path(pattern)
    if p.is_dir():
        paths = sorted(q for q in p.iterdir() if q.suffix.lower() in IMAGE_SUFFIXES)
    else:
        paths = sorted(Path(q) for q in glob.glob(str(pattern))
                       if Path(q).suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise CameraError(f"files camera: no PNG/JPEG images match {str(pattern)!r}")
    return paths


def load_luma(path: Path) -> np.ndarray:
    """Read an image file as its luma plane (what the Pi camera's Y plane would give)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("L"), dtype=np.uint8).copy()
    except (OSError, UnidentifiedImageError) as exc:
        raise CameraError(f"files camera: cannot read image {path}: {exc}") from exc


class Picamera2Source:
    """The Pi camera through picamera2: a lores YUV420 stream of which only Y is kept.

    A stalled camera raises no error in libcamera; frames simply stop. We capture with a
    short `wait`, flush the timed-out job, and give up with CameraStalled after
    `stall_timeout_s` so that systemd restarts the daemon.
    """

    def __init__(self, size: tuple[int, int], fps: float, stall_timeout_s: float = 2.0,
                 autofocus: bool = True, stop: threading.Event | None = None) -> None:
        try:
            from picamera2 import Picamera2
        except (ImportError, ValueError) as exc:  # ValueError: a pip numpy 2.x in the venv
            raise CameraError(
                "picamera2 is not importable: on Raspberry Pi OS run "
                "'apt install python3-picamera2 --no-install-recommends' and use a venv "
                "created with --system-site-packages, without a pip-installed numpy "
                f"({exc})") from exc
        self.stall_timeout_s = stall_timeout_s
        self._stop = stop or threading.Event()
        self._seq = 0
        try:
            self._cam: Any = Picamera2()
        except (IndexError, RuntimeError) as exc:  # IndexError: no camera (0.3.36)
            raise CameraError(f"picamera2: no usable camera: {exc!r}") from exc
        try:
            controls: dict[str, Any] = {"FrameRate": fps}
            if autofocus and "AfMode" in self._cam.camera_controls:
                from libcamera import (
                    controls as lc,  # only Camera Module 3 advertises AfMode
                )
                controls["AfMode"] = lc.AfModeEnum.Continuous
            w, h = size
            # The main stream must be at least as large as lores; we never read it.
            cfg = self._cam.create_video_configuration(
                main={"size": (max(w, 640), max(h, 480))},
                lores={"size": (w, h), "format": "YUV420"},
                controls=controls, buffer_count=4)
            self._cam.configure(cfg)
            self.width, self.height = self._cam.stream_configuration("lores")["size"]
            self._cam.start()
        except Exception:
            self._cam.close()
            raise

    def read(self) -> Frame | None:
        from picamera2 import MappedArray

        wait_s = min(0.5, self.stall_timeout_s)  # short waits keep SIGTERM responsive
        stalled_since = time.monotonic()
        while not self._stop.is_set():
            try:
                with self._cam.captured_request(wait=wait_s) as req:
                    ts_ns = req.get_metadata().get("SensorTimestamp") or time.monotonic_ns()
                    with MappedArray(req, "lores", write=False) as m:
                        # YUV420 is (h*3/2, stride): rows < h are Y, columns >= w padding.
                        luma = m.array[: self.height, : self.width].copy()
                self._seq += 1
                return Frame(luma=luma, ts_ns=int(ts_ns), seq=self._seq)
            except TimeoutError:  # picamera2 re-exports concurrent.futures.TimeoutError
                self._cam.cancel_all_and_flush()
                if time.monotonic() - stalled_since >= self.stall_timeout_s:
                    raise CameraStalled(
                        f"picamera2: no frame for {self.stall_timeout_s:.1f} s") from None
        return None

    def close(self) -> None:
        try:
            self._cam.stop()
        finally:
            self._cam.close()


def open_source(camera: CameraSection, stop: threading.Event) -> FrameSource:
    """Build the frame source the [camera] section asks for."""
    if camera.source == "files":
        return FileFrameSource(camera.path, camera.fps, camera.loop, stop)
    return Picamera2Source(camera.size, camera.fps, camera.stall_timeout_s, camera.autofocus, stop)
