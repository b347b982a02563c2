"""Frame sources: the Pi camera (picamera2: the lores Y plane, and optionally the main stream's
for second looks) and image files (the simulated camera, which simulates both streams too)."""

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
from .controls import CameraTuning, libcamera_controls

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


@dataclass(frozen=True)
class Frame:
    """One luma frame: a 2-D uint8 array, its capture time (monotonic ns) and its number.

    ``main``, when the camera has a main stream, is the same instant's full-resolution Y
    plane: a view into the camera's buffer, valid until the source's next read() or close(),
    so only crops of it are ever read (and copied only where a crop needs it).
    """

    luma: np.ndarray = field(repr=False)
    ts_ns: int
    seq: int
    main: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        for name, plane in (("luma", self.luma), ("main", self.main)):
            if plane is not None and (plane.ndim != 2 or plane.dtype != np.uint8):
                raise ValueError(f"a frame's {name} is a 2-D uint8 luma plane, got "
                                 f"{plane.dtype} {plane.shape}")
        if self.main is not None and (self.main.shape[0] < self.luma.shape[0]
                                      or self.main.shape[1] < self.luma.shape[1]):
            raise ValueError(f"a main plane {self.main.shape} smaller than lores "
                             f"{self.luma.shape}")


def lores_and_main(luma: np.ndarray, lores_size: tuple[int, int] | None
                   ) -> tuple[np.ndarray, np.ndarray | None]:
    """A full-size image as the two streams: its downscale to ``lores_size`` (an area
    average, as the ISP's scaler) and itself as main. An image no larger than lores, or no
    ``lores_size``, is the lores frame alone."""
    if lores_size is None:
        return luma, None
    w, h = lores_size
    if luma.shape[1] <= w and luma.shape[0] <= h:
        return luma, None
    from PIL import Image

    small = Image.fromarray(luma).resize((w, h), Image.Resampling.BOX)
    return np.asarray(small), luma


class FrameSource(Protocol):
    """Anything that yields frames; read() returns None when the source has ended."""

    def read(self) -> Frame | None: ...

    def close(self) -> None: ...


class FileFrameSource:
    """Replays PNG/JPEG files as camera frames, paced at `fps` (the simulated camera).

    With ``lores_size`` (set when [camera] main_size is), a file larger than it is the main
    stream and its downscale the lores frame, as picamera2's two streams would be.
    """

    def __init__(self, pattern: str | Path, fps: float, loop: bool = False,
                 stop: threading.Event | None = None,
                 clock_ns: Callable[[], int] = time.monotonic_ns,
                 wait: Callable[[float], bool] | None = None,
                 lores_size: tuple[int, int] | None = None) -> None:
        self.pattern = pattern
        self.paths = resolve_image_paths(pattern)
        self.lores_size = lores_size
        self.interval_ns = int(1e9 / fps)
        self.loop = loop
        self._stop = stop or threading.Event()
        # Injectable so tests can check pacing on a fake clock: wait(s) -> True when stopped.
        self._clock_ns = clock_ns
        self._wait = wait or self._stop.wait
        self._cache: dict[Path, tuple[np.ndarray, np.ndarray | None]] = {}
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
        planes = self._cache.get(path)
        if planes is None:
            planes = lores_and_main(load_luma(path), self.lores_size)
            if self.loop:  # replaying the same files: decode each once
                self._cache[path] = planes
        self._seq += 1
        return Frame(luma=planes[0], ts_ns=self._clock_ns(), seq=self._seq, main=planes[1])

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


def resolve_frames(patterns: list[str]) -> list[Path]:
    """Every image of several directories or globs, each resolved as the files camera does,
    in the order given (CameraError names a pattern that matches nothing)."""
    return [p for pattern in patterns for p in resolve_image_paths(pattern)]


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
    """The Pi camera through picamera2: a lores YUV420 stream of which only Y is kept, and
    with ``main_size`` a full-resolution YUV420 main stream for second looks.

    The lores Y plane is copied (small) and the request released at once, unless there is a
    main stream: then the request is held until the next read() or close(), so that the
    frame's ``main`` can be a view of the buffer and only the crops a second look reads are
    touched (one of the four buffers stays with us meanwhile).

    A stalled camera raises no error in libcamera; frames simply stop. We capture with a
    short `wait`, flush the timed-out job, and give up with CameraStalled after
    `stall_timeout_s` so that systemd restarts the daemon.
    """

    def __init__(self, size: tuple[int, int], fps: float, stall_timeout_s: float = 2.0,
                 autofocus: bool = True, stop: threading.Event | None = None,
                 main_size: tuple[int, int] | None = None,
                 tuning: CameraTuning | None = None) -> None:
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
        self._held: tuple[Any, Any] | None = None  # (request, entered MappedArray of main)
        try:
            self._cam: Any = Picamera2()
        except (IndexError, RuntimeError) as exc:  # IndexError: no camera (0.3.36)
            raise CameraError(f"picamera2: no usable camera: {exc!r}") from exc
        try:
            tuning = tuning or CameraTuning(autofocus=autofocus)
            controls, skipped = libcamera_controls(tuning, self._cam.camera_controls)
            for name in skipped:
                log.warning("picamera2: this camera has no %s control; [camera] setting ignored",
                            name)
            w, h = size
            if main_size is not None:
                main = {"size": main_size, "format": "YUV420"}
            else:  # main must be at least as large as lores; we never read it then
                main = {"size": (max(w, 640), max(h, 480))}
            cfg = self._cam.create_video_configuration(
                main=main, lores={"size": (w, h), "format": "YUV420"},
                controls={"FrameRate": fps} | controls, buffer_count=4)
            self._cam.configure(cfg)
            self.width, self.height = self._cam.stream_configuration("lores")["size"]
            self.main_size: tuple[int, int] | None = (
                tuple(self._cam.stream_configuration("main")["size"])
                if main_size is not None else None)
            self._cam.start()
        except Exception:
            self._cam.close()
            raise

    def read(self) -> Frame | None:
        from picamera2 import MappedArray

        self._release()
        wait_s = min(0.5, self.stall_timeout_s)  # short waits keep SIGTERM responsive
        stalled_since = time.monotonic()
        while not self._stop.is_set():
            try:
                req = self._cam.capture_request(wait=wait_s)
            except TimeoutError:  # picamera2 re-exports concurrent.futures.TimeoutError
                self._cam.cancel_all_and_flush()
                if time.monotonic() - stalled_since >= self.stall_timeout_s:
                    raise CameraStalled(
                        f"picamera2: no frame for {self.stall_timeout_s:.1f} s") from None
                continue
            try:
                ts_ns = req.get_metadata().get("SensorTimestamp") or time.monotonic_ns()
                with MappedArray(req, "lores", write=False) as m:
                    # YUV420 is (h*3/2, stride): rows < h are Y, columns >= w padding.
                    luma = m.array[: self.height, : self.width].copy()
                main = None
                if self.main_size is not None:
                    mapped = MappedArray(req, "main", write=False)
                    mw, mh = self.main_size
                    main = mapped.__enter__().array[:mh, :mw]  # a view: held with the request
                    self._held = (req, mapped)
            finally:
                if self._held is None:
                    req.release()
            self._seq += 1
            return Frame(luma=luma, ts_ns=int(ts_ns), seq=self._seq, main=main)
        return None

    def _release(self) -> None:
        """Give the held request (and the main view into it) back to the camera."""
        if self._held is not None:
            req, mapped = self._held
            self._held = None
            try:
                mapped.__exit__(None, None, None)
            finally:
                req.release()

    def close(self) -> None:
        try:
            self._release()
            self._cam.stop()
        finally:
            self._cam.close()


def open_source(camera: CameraSection, stop: threading.Event) -> FrameSource:
    """Build the frame source the [camera] section asks for."""
    if camera.source == "files":
        lores = camera.size if camera.main_size is not None else None
        return FileFrameSource(camera.path, camera.fps, camera.loop, stop, lores_size=lores)
    return Picamera2Source(camera.size, camera.fps, camera.stall_timeout_s, camera.autofocus,
                           stop, camera.main_size, CameraTuning.from_section(camera))
