"""A fake `picamera2` that follows the documented API of picamera2 v0.3.36 (git 3e6dff0),
the version described in shared/notes/pi-stack-api.md, for the parts gate/scan/camera.py uses.

picamera2 needs libcamera and a Pi, so the gate's Picamera2Source is tested against this
module instead. What it keeps from the real one (file and function named in brackets):

- `Picamera2(camera_num=0, ...)` raises IndexError when there is no camera
  (`global_camera_info()[camera_num]`, issue #1081); `camera_controls` is a dict
  name -> (min, max, default); `AfMode` is advertised only by an autofocus camera.
- `create_video_configuration(main=, lores=, controls=, buffer_count=, ...)` returns a dict;
  only the stream keys format/size/stride/preserve_ar are accepted (ValueError otherwise);
  lores defaults to YUV420 at main's size; sizes are aligned to 2 (`align_stream(optimal=False)`).
- `configure()` checks that lores is not larger than main and is YUV (RuntimeError, as
  `check_camera_config`), applies the controls (`FrameRate` is virtual and becomes
  `FrameDurationLimits`; an unadvertised control raises RuntimeError, as `Controls`), and
  fills in each stream's `stride`. `stream_configuration(name)` returns that stream's dict.
- `captured_request(wait=None, flush=None)` is a context manager over `capture_request` that
  releases the request on exit. `wait` in seconds raises `TimeoutError`
  (= `concurrent.futures.TimeoutError`) when no frame came in time; `wait=None` blocks for as
  long as it takes, as the real one does when the camera stalls. A timed-out job stays
  queued and swallows the next frame until `cancel_all_and_flush()` clears it.
- a request's `get_metadata()["SensorTimestamp"]` is on `time.monotonic_ns()`'s clock.
- `MappedArray(request, stream, reshape=True, write=True)`: `.array` of a YUV420 stream is
  shaped `(h*3//2, stride)` (`Helpers._make_array_shared`); rows < h are Y, columns >= w
  are padding. A real ISP pads rows to 64 bytes; this fake adds `stride_pad` (64) more, so
  code that forgets to crop columns is caught. Padding and chroma hold noise.
- A released request's buffer goes back to the camera: the fake overwrites it, so code that
  keeps a view instead of a copy sees garbage.
- Both streams: a YUV420 `main` gets a buffer of its own, like lores. Each scripted frame is
  the scene at one instant: it is scaled to each stream's size (an area average when it
  shrinks, as the ISP's scaler), so a scripted frame at main size gives main its own pixels
  and lores their downscale. A non-YUV main (the XBGR8888 default) has no pixels here.
- `camera_controls` advertises what an imx708 (Camera Module 3) does with libcamera's rpi
  pipeline: exposure, AeMeteringMode, ExposureValue, AeFlickerMode/AeFlickerPeriod, and the
  lens controls only with `autofocus`.

Frames come at the configured frame rate, from a script shared by every camera object:

- tests in-process: `picamera2.script.frames.extend([luma, ...])` (2-D uint8 arrays;
  resized to the lores size when they differ), `script.stall_after = N` (frames stop after
  N have been delivered), `script.stall_for_s` (None: forever; else frames resume after
  that long), `script.loop`, `script.cameras`, `script.autofocus`; `reset()` between tests.
- a daemon subprocess with PYTHONPATH=tests/fakes: the same from environment variables
  FAKE_PICAMERA2_FRAMES (a directory or glob of PNG/JPEG), FAKE_PICAMERA2_STALL_AFTER,
  FAKE_PICAMERA2_STALL_FOR_S, FAKE_PICAMERA2_LOOP (1/0), FAKE_PICAMERA2_CAMERAS,
  FAKE_PICAMERA2_AUTOFOCUS (1/0).

When the scripted frames run out (and `loop` is off) the camera keeps delivering an empty
scene, as a real camera looking at an empty doorway would.

Not faked: previews, encoders, still captures, `wait=False`/`signal_function` jobs, the raw
stream's pixels, and `flush` (frames are never queued here, so every frame is fresh anyway).
"""

from __future__ import annotations

import collections
import contextlib
import glob
import os
import threading
import time
from concurrent.futures import CancelledError, TimeoutError
from pathlib import Path
from typing import Any, Iterator

import libcamera  # as the real package does; a missing libcamera fails the import
import numpy as np

__version__ = "0.3.36"
__all__ = ["Picamera2", "MappedArray", "CompletedRequest", "TimeoutError", "CancelledError",
           "script", "reset"]

EMPTY_SCENE = 200  # the grey of an empty doorway (tests/qrimages.py uses the same)
_VALID_STREAM_KEYS = ("format", "size", "stride", "preserve_ar")


class Script:
    """What the fake camera delivers; shared by every Picamera2 object of the process."""

    def __init__(self) -> None:
        self.frames: collections.deque[np.ndarray] = collections.deque()
        self.loop = False
        self.stall_after: int | None = None
        self.stall_for_s: float | None = None
        self.cameras = 1
        self.autofocus = False
        self.stride_pad = 64
        self.instances: list[Picamera2] = []
        self._lock = threading.Lock()

    def next_luma(self) -> np.ndarray | None:
        with self._lock:
            if not self.frames:
                return None
            luma = self.frames.popleft()
            if self.loop:
                self.frames.append(luma)
            return luma

    def load_env(self) -> None:
        env = os.environ
        if env.get("FAKE_PICAMERA2_FRAMES"):
            self.frames.extend(_load_lumas(env["FAKE_PICAMERA2_FRAMES"]))
        if env.get("FAKE_PICAMERA2_STALL_AFTER"):
            self.stall_after = int(env["FAKE_PICAMERA2_STALL_AFTER"])
        if env.get("FAKE_PICAMERA2_STALL_FOR_S"):
            self.stall_for_s = float(env["FAKE_PICAMERA2_STALL_FOR_S"])
        self.loop = env.get("FAKE_PICAMERA2_LOOP", "0") == "1"
        self.cameras = int(env.get("FAKE_PICAMERA2_CAMERAS", "1"))
        self.autofocus = env.get("FAKE_PICAMERA2_AUTOFOCUS", "0") == "1"


def _load_lumas(pattern: str) -> list[np.ndarray]:
    from PIL import Image

    p = Path(pattern)
    paths = sorted(p.iterdir()) if p.is_dir() else sorted(Path(q) for q in glob.glob(pattern))
    lumas = []
    for path in paths:
        if path.suffix.lower() in (".png", ".jpg", ".jpeg"):
            with Image.open(path) as img:
                lumas.append(np.asarray(img.convert("L"), dtype=np.uint8).copy())
    return lumas


script = Script()


def reset() -> None:
    """Forget the script and every camera object; re-read the FAKE_PICAMERA2_* variables."""
    for cam in script.instances:
        cam._closed.set()
    script.__init__()  # in place: `from picamera2 import script` stays valid
    script.load_env()


script.load_env()


def _align_up(n: int, to: int) -> int:
    return (n + to - 1) // to * to


class Picamera2:
    """The camera object (picamera2/picamera2.py)."""

    def __init__(self, camera_num: int = 0, verbose_console: Any = None, tuning: Any = None,
                 allocator: Any = None) -> None:
        self.camera_idx = self.global_camera_info()[camera_num]["Num"]  # IndexError: no camera
        self.is_open = True
        self.started = False
        self.camera_config: dict[str, Any] | None = None
        self.controls: dict[str, Any] = {}
        # For tests to look at:
        self.cancel_count = 0
        self.delivered = 0
        self.held = 0  # requests captured and not yet released
        self.timestamps: list[int] = []  # SensorTimestamp of every frame made, in order
        self._stale_jobs = 0
        self._due_ns: int | None = None
        self._closed = threading.Event()
        self._rng = np.random.default_rng(camera_num)
        self._script = script
        script.instances.append(self)

    @staticmethod
    def global_camera_info() -> list[dict[str, Any]]:
        return [{"Model": "imx708", "Location": 2, "Rotation": 180,
                 "Id": f"/base/soc/i2c0mux/i2c@1/imx708@1a/{i}", "Num": i}
                for i in range(script.cameras)]

    @property
    def camera_controls(self) -> dict[str, tuple[Any, Any, Any]]:
        ctrls: dict[str, tuple[Any, Any, Any]] = {
            "ExposureTime": (26, 220_417_486, 20_000),
            "AnalogueGain": (1.12, 16.0, 1.0),
            "FrameDurationLimits": (8_333, 220_000_000, 33_333),
            "NoiseReductionMode": (0, 4, 0),
            "ScalerCrop": ((0, 0, 0, 0), (65535, 65535, 65535, 65535), (0, 0, 4608, 2592)),
            "AeMeteringMode": (0, 3, 0),
            "ExposureValue": (-8.0, 8.0, 0.0),
            "AeFlickerMode": (0, 1, 0),
            "AeFlickerPeriod": (100, 1_000_000, 0),
        }
        if self._script.autofocus:
            ctrls |= {"AfMode": (0, 2, 0), "AfSpeed": (0, 1, 0), "LensPosition": (0.0, 15.0, 1.0)}
        return ctrls

    # -- configurations --------------------------------------------------------------------

    @staticmethod
    def _make_initial_stream_config(stream_config: dict[str, Any],
                                    updates: dict[str, Any] | None) -> dict[str, Any] | None:
        if updates is None:
            return None
        for key, value in updates.items():
            if key not in _VALID_STREAM_KEYS:
                raise ValueError(f"Bad key {key!r}: valid stream configuration keys are "
                                 f"{_VALID_STREAM_KEYS}")
            stream_config[key] = value
        return stream_config

    @staticmethod
    def align_stream(stream_config: dict[str, Any], optimal: bool = True) -> None:
        align = 64 if optimal else 2
        w, h = stream_config["size"]
        stream_config["size"] = (w - w % align, h - h % 2)

    def _create_configuration(self, main: dict[str, Any], lores: dict[str, Any] | None,
                              raw: dict[str, Any] | None, transform: Any, colour_space: Any,
                              buffer_count: int, controls: dict[str, Any], queue: bool,
                              use_case: str, main_default: dict[str, Any],
                              default_durations: tuple[int, int]) -> dict[str, Any]:
        if not self.is_open:
            raise RuntimeError("Camera not opened")
        main_cfg = self._make_initial_stream_config(main_default, main)
        assert main_cfg is not None
        self.align_stream(main_cfg, optimal=False)
        lores_cfg = self._make_initial_stream_config(
            {"format": "YUV420", "size": main_cfg["size"], "preserve_ar": False}, lores)
        if lores_cfg is not None:
            self.align_stream(lores_cfg, optimal=False)
        raw_cfg = self._make_initial_stream_config(
            {"format": "SBGGR10_CSI2P", "size": main_cfg["size"]}, raw)
        if colour_space is None:
            colour_space = libcamera.ColorSpace.Smpte170m()
        if "NoiseReductionMode" in self.camera_controls:
            controls = {"NoiseReductionMode": 1, "FrameDurationLimits": default_durations} | controls
        return {"use_case": use_case, "transform": transform, "colour_space": colour_space,
                "buffer_count": buffer_count, "queue": queue, "main": main_cfg,
                "lores": lores_cfg, "raw": raw_cfg, "controls": controls,
                "sensor": {}, "display": "main", "encode": "main"}

    def create_video_configuration(self, main: dict[str, Any] = {}, lores: dict[str, Any] | None = None,
                                   raw: dict[str, Any] = {}, transform: Any = None,
                                   colour_space: Any = None, buffer_count: int = 6,
                                   controls: dict[str, Any] = {}, display: str = "main",
                                   encode: str = "main", queue: bool = True,
                                   sensor: dict[str, Any] = {}, use_case: str = "video") -> dict[str, Any]:
        return self._create_configuration(
            main, lores, raw, transform or libcamera.Transform(), colour_space, buffer_count,
            controls, queue, use_case, {"format": "XBGR8888", "size": (1280, 720), "preserve_ar": True},
            (33333, 33333))

    def create_preview_configuration(self, main: dict[str, Any] = {}, lores: dict[str, Any] | None = None,
                                     raw: dict[str, Any] = {}, transform: Any = None,
                                     colour_space: Any = None, buffer_count: int = 4,
                                     controls: dict[str, Any] = {}, display: str = "main",
                                     encode: str = "main", queue: bool = True,
                                     sensor: dict[str, Any] = {}, use_case: str = "preview") -> dict[str, Any]:
        return self._create_configuration(
            main, lores, raw, transform or libcamera.Transform(),
            colour_space or libcamera.ColorSpace.Sycc(), buffer_count, controls, queue, use_case,
            {"format": "XBGR8888", "size": (640, 480), "preserve_ar": True}, (100, 83333))

    def check_camera_config(self, camera_config: dict[str, Any]) -> None:
        for name in ("colour_space", "transform", "main", "lores", "raw"):
            if name not in camera_config:
                raise RuntimeError(f"{name!r} key expected in camera configuration")
        if camera_config["lores"] is not None:
            main_w, main_h = camera_config["main"]["size"]
            lores_w, lores_h = camera_config["lores"]["size"]
            if lores_w > main_w or lores_h > main_h:
                raise RuntimeError("lores stream dimensions may not exceed main stream")
            if camera_config["lores"]["format"] not in ("YUV420", "YVU420"):
                raise RuntimeError("lores stream must be YUV")

    def configure(self, camera_config: dict[str, Any] | str | None = None) -> None:
        if camera_config is None or camera_config == "preview":
            camera_config = self.create_preview_configuration()
        elif camera_config == "video":
            camera_config = self.create_video_configuration()
        if not self.is_open:
            raise RuntimeError("Camera not opened")
        if self.started:
            raise RuntimeError("Camera must be stopped before configuring")
        self.check_camera_config(camera_config)
        for name in ("main", "lores"):
            stream = camera_config[name]
            if stream is None:
                continue
            w, h = stream["size"]
            if stream["format"] in ("YUV420", "YVU420"):
                stream["stride"] = _align_up(w, 64) + self._script.stride_pad
                stream["framesize"] = stream["stride"] * h * 3 // 2
            else:
                stream["stride"] = _align_up(w * 4, 64)
                stream["framesize"] = stream["stride"] * h
        self.controls = {}
        self.set_controls(camera_config.get("controls", {}))
        self.camera_config = camera_config

    def set_controls(self, controls: dict[str, Any]) -> None:
        advertised = self.camera_controls
        for name, value in controls.items():
            if name == "FrameRate":  # virtual: controls.py _framerates_to_durations_
                rates = value if isinstance(value, (tuple, list)) else (value, value)
                name, value = "FrameDurationLimits", (int(1e6 / rates[1]), int(1e6 / rates[0]))
            if name not in advertised:
                raise RuntimeError(f"Control {name} is not advertised by libcamera")
            self.controls[name] = value

    def stream_configuration(self, name: str = "main") -> dict[str, Any]:
        return self.camera_config[name]  # type: ignore[index]

    def camera_configuration(self) -> dict[str, Any] | None:
        return self.camera_config

    # -- running ---------------------------------------------------------------------------

    def start(self, config: Any = None, show_preview: Any = False) -> None:
        if not self.camera_config and config is None:
            config = "preview"
        if config is not None:
            self.configure(config)
        if not self.camera_config:
            raise RuntimeError("Camera has not been configured")
        self.started = True
        self._due_ns = time.monotonic_ns()
        if self._script.stall_after == 0:
            self._begin_stall()

    def stop(self) -> None:
        self.started = False

    def close(self) -> None:
        if not self.is_open:
            return
        self.stop()
        self.is_open = False
        self.camera_config = {}
        self._closed.set()

    def cancel_all_and_flush(self) -> None:
        """Cancel the jobs left queued by timed-out captures (picamera2.py)."""
        self.cancel_count += 1
        self._stale_jobs = 0

    def _frame_interval_ns(self) -> int:
        return int(self.controls.get("FrameDurationLimits", (33333, 33333))[0]) * 1000

    def _begin_stall(self) -> None:
        stall_for = self._script.stall_for_s
        self._due_ns = None if stall_for is None else time.monotonic_ns() + int(stall_for * 1e9)

    def capture_request(self, wait: Any = None, signal_function: Any = None,
                        flush: Any = None) -> "CompletedRequest":
        if wait is False or signal_function is not None:
            raise NotImplementedError("the fake camera supports blocking captures only")
        timeout = None if wait is None or wait is True else float(wait)
        deadline = None if timeout is None else time.monotonic_ns() + int(timeout * 1e9)
        while True:
            due = self._due_ns if self.started else None
            if due is None or (deadline is not None and due > deadline):
                # No frame in time: the job stays queued (picamera2 only drops it in
                # cancel_all_and_flush) and will take the next frame that comes.
                if deadline is None:
                    self._closed.wait()
                    raise RuntimeError("camera closed while a capture was waiting")
                self._closed.wait(max(0, deadline - time.monotonic_ns()) / 1e9)
                self._stale_jobs += 1
                raise TimeoutError()
            if self._closed.wait(max(0, due - time.monotonic_ns()) / 1e9):
                raise RuntimeError("camera closed while a capture was waiting")
            request = self._next_request(due)
            if self._stale_jobs:  # an abandoned job takes this frame; the caller never sees it
                self._stale_jobs -= 1
                request.release()
                continue
            return request

    @contextlib.contextmanager
    def captured_request(self, wait: Any = None, flush: Any = None) -> Iterator["CompletedRequest"]:
        """Capture a completed request; it is released when the block ends (picamera2.py)."""
        request = self.capture_request(wait=wait, flush=flush)
        try:
            yield request
        finally:
            request.release()

    def capture_array(self, name: str = "main", wait: Any = None) -> np.ndarray:
        with self.captured_request(wait=wait) as request:
            return request.make_array(name)

    def _next_request(self, ts_ns: int) -> "CompletedRequest":
        assert self.camera_config
        luma = self._script.next_luma()  # one scene, seen by every stream
        buffers = {}
        for name in ("main", "lores"):
            stream = self.camera_config[name]
            if stream is not None and stream["format"] in ("YUV420", "YVU420"):
                buffers[name] = self._yuv420_buffer(stream, luma)
        self.delivered += 1
        self.timestamps.append(ts_ns)
        interval = self._frame_interval_ns()
        if self._script.stall_after is not None and self.delivered == self._script.stall_after:
            self._begin_stall()
        else:
            self._due_ns = max(ts_ns + interval, time.monotonic_ns())
        metadata = {"SensorTimestamp": ts_ns, "FrameDuration": interval // 1000,
                    "ExposureTime": 20000, "AnalogueGain": 1.0}
        if self._script.autofocus:
            metadata |= {"AfState": 2, "LensPosition": 1.0}
        self.held += 1
        return CompletedRequest(self, buffers, metadata)

    def _yuv420_buffer(self, stream: dict[str, Any], luma: np.ndarray | None) -> np.ndarray:
        w, h = stream["size"]
        stride = stream["stride"]
        if luma is None:
            luma = np.full((h, w), EMPTY_SCENE, dtype=np.uint8)
        elif luma.shape != (h, w):
            from PIL import Image
            shrink = luma.shape[0] >= h and luma.shape[1] >= w
            luma = np.asarray(Image.fromarray(luma).resize(
                (w, h), Image.Resampling.BOX if shrink else Image.Resampling.BILINEAR))
        buf = self._rng.integers(0, 256, size=(h * 3 // 2, stride), dtype=np.uint8)
        buf[:h, :w] = luma
        return buf.reshape(-1)  # a mapped buffer is flat bytes


class CompletedRequest:
    """A captured frame's request (picamera2/request.py); release() returns its buffers."""

    def __init__(self, picam2: Picamera2, buffers: dict[str, np.ndarray],
                 metadata: dict[str, Any]) -> None:
        self.picam2 = picam2
        self.config = dict(picam2.camera_config or {})
        self._buffers = buffers
        self._metadata = metadata
        self.released = False

    def get_metadata(self) -> dict[str, Any]:
        return dict(self._metadata)

    def release(self) -> None:
        if self.released:
            return
        self.released = True
        self.picam2.held -= 1
        for buf in self._buffers.values():
            buf[:] = 0xEE  # the camera reuses the buffer for a later frame

    def _buffer(self, name: str) -> np.ndarray:
        if self.released:
            raise RuntimeError("request already released: its buffers belong to the camera")
        if name not in self._buffers:
            raise KeyError(f"no stream {name!r} in this request")
        return self._buffers[name]

    def make_array(self, name: str) -> np.ndarray:
        return _shaped(self._buffer(name), self.config[name]).copy()


def _shaped(buf: np.ndarray, config: dict[str, Any]) -> np.ndarray:
    """Helpers._make_array_shared for YUV420: an image of 50% greater height, padding kept."""
    w, h = config["size"]
    if config["format"] not in ("YUV420", "YVU420"):
        raise RuntimeError("Format " + config["format"] + " not supported by the fake")
    return buf.reshape((h * 3 // 2, config["stride"]))


class MappedArray:
    """A view of one stream's buffer of a request, for the `with` block (picamera2/request.py)."""

    def __init__(self, request: CompletedRequest, stream: str, reshape: bool = True,
                 write: bool = True) -> None:
        self._request = request
        self._stream = stream
        self._reshape = reshape
        self._array: np.ndarray | None = None

    def __enter__(self) -> "MappedArray":
        buf = self._request._buffer(self._stream)
        self._array = _shaped(buf, self._request.config[self._stream]) if self._reshape else buf
        return self

    def __exit__(self, *exc: Any) -> None:
        self._array = None

    @property
    def array(self) -> np.ndarray | None:
        return self._array
