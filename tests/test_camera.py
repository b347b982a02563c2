"""Frame sources: the files camera on real PNG/JPEG files, and Picamera2Source against the fake
picamera2 in tests/fakes (which follows picamera2 0.3.36's documented API)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from gate.config import CameraSection
from gate.errors import CameraError, CameraStalled
from gate.scan.camera import (
    FileFrameSource,
    Frame,
    Picamera2Source,
    open_source,
    resolve_image_paths,
)
from tests.support.qrimages import write_frames, write_png

FAKES = Path(__file__).resolve().parent / "fakes"
FAKE_ENV = ("FAKE_PICAMERA2_FRAMES", "FAKE_PICAMERA2_STALL_AFTER", "FAKE_PICAMERA2_STALL_FOR_S",
            "FAKE_PICAMERA2_LOOP", "FAKE_PICAMERA2_CAMERAS", "FAKE_PICAMERA2_AUTOFOCUS")


def grey_png(path: Path, value: int, size: tuple[int, int] = (32, 24)) -> Path:
    return write_png(path, np.full((size[1], size[0]), value, dtype=np.uint8))


def values(frames: list[Frame | None]) -> list[int | None]:
    return [None if f is None else int(f.luma[0, 0]) for f in frames]


# -- files camera ---------------------------------------------------------------------------

def test_files_source_directory_is_read_in_name_order(tmp_path: Path) -> None:
    for name, v in [("b.png", 20), ("a.png", 10), ("c.PNG", 30), ("d.jpg", 40)]:
        if name.endswith(".jpg"):
            Image.fromarray(np.full((24, 32), v, dtype=np.uint8)).save(tmp_path / name, quality=100)
        else:
            grey_png(tmp_path / name, v)
    (tmp_path / "notes.txt").write_text("not an image")
    src = FileFrameSource(tmp_path, fps=1000)
    assert [p.name for p in src.paths] == ["a.png", "b.png", "c.PNG", "d.jpg"]
    frames = [src.read() for _ in range(4)]
    assert values(frames[:3]) == [10, 20, 30]
    assert frames[3] is not None and abs(int(frames[3].luma[0, 0]) - 40) <= 2  # JPEG


def test_files_source_glob_selects_only_matching_files(tmp_path: Path) -> None:
    grey_png(tmp_path / "cam-2.png", 2)
    grey_png(tmp_path / "cam-1.png", 1)
    grey_png(tmp_path / "other-0.png", 99)
    src = FileFrameSource(str(tmp_path / "cam-*.png"), fps=1000)
    assert values([src.read(), src.read(), src.read()]) == [1, 2, None]


def test_files_source_numbers_frames_and_stamps_them_on_the_monotonic_clock(tmp_path: Path) -> None:
    for i in range(3):
        grey_png(tmp_path / f"f{i}.png", i)
    src = FileFrameSource(tmp_path, fps=1000)
    before = time.monotonic_ns()
    frames = [src.read() for _ in range(3)]
    after = time.monotonic_ns()
    assert all(f is not None for f in frames)
    assert [f.seq for f in frames if f] == [1, 2, 3]
    stamps = [f.ts_ns for f in frames if f]
    assert stamps == sorted(stamps) and len(set(stamps)) == 3
    assert before <= stamps[0] and stamps[-1] <= after


def test_files_source_without_loop_ends_with_none(tmp_path: Path) -> None:
    grey_png(tmp_path / "a.png", 1)
    grey_png(tmp_path / "b.png", 2)
    src = FileFrameSource(tmp_path, fps=1000, loop=False)
    assert values([src.read() for _ in range(4)]) == [1, 2, None, None]


def test_files_source_with_loop_starts_over_and_keeps_counting(tmp_path: Path) -> None:
    grey_png(tmp_path / "a.png", 1)
    grey_png(tmp_path / "b.png", 2)
    src = FileFrameSource(tmp_path, fps=1000, loop=True)
    frames = [src.read() for _ in range(5)]
    assert values(frames) == [1, 2, 1, 2, 1]
    assert [f.seq for f in frames if f] == [1, 2, 3, 4, 5]


def test_files_source_paces_frames_at_fps(tmp_path: Path) -> None:
    for i in range(4):
        grey_png(tmp_path / f"f{i}.png", i)
    fps = 25
    now = [10**9]
    waits: list[float] = []

    def wait(seconds: float) -> bool:  # a fake sleep: moves the fake clock, never stopped
        waits.append(seconds)
        now[0] += round(seconds * 1e9)
        return False

    src = FileFrameSource(tmp_path, fps=fps, loop=True, clock_ns=lambda: now[0], wait=wait)
    stamps = [f.ts_ns for f in (src.read() for _ in range(4)) if f]
    assert np.diff(stamps).tolist() == [10**9 // fps] * 3  # exactly the frame interval
    assert waits == pytest.approx([1 / fps] * 3)  # it waited for each, never the first
    now[0] += 5 * 10**9  # a stall (slow decoding): no burst of frames to catch up after it
    waits.clear()
    after = [f.ts_ns for f in (src.read() for _ in range(4)) if f]
    # the frame due during the stall comes at once, then the pace is kept again
    assert np.diff(after).tolist() == [0, 10**9 // fps, 10**9 // fps]
    assert waits == pytest.approx([1 / fps] * 2)


def test_files_source_stop_event_interrupts_the_pacing_wait(tmp_path: Path) -> None:
    grey_png(tmp_path / "a.png", 1)
    grey_png(tmp_path / "b.png", 2)
    stop = threading.Event()
    src = FileFrameSource(tmp_path, fps=0.1, stop=stop)  # 10 s between frames
    assert src.read() is not None
    result: list[Frame | None] = []
    reader = threading.Thread(target=lambda: result.append(src.read()))
    reader.start()
    time.sleep(0.05)
    stop.set()
    reader.join(timeout=5)  # far less than the 10 s the pacing would take
    assert not reader.is_alive(), "stop did not interrupt the pacing wait"
    assert result == [None]


@pytest.mark.parametrize("content", [b"this is not a PNG", b"\x89PNG\r\n\x1a\n" + b"\0" * 40])
def test_files_source_unreadable_image_raises_camera_error_naming_the_file(
        tmp_path: Path, content: bytes) -> None:
    grey_png(tmp_path / "a.png", 1)
    (tmp_path / "b.png").write_bytes(content)
    src = FileFrameSource(tmp_path, fps=1000)
    assert src.read() is not None
    with pytest.raises(CameraError) as info:
        src.read()
    assert str(tmp_path / "b.png") in str(info.value)


def test_files_source_truncated_image_raises_camera_error_naming_the_file(tmp_path: Path) -> None:
    good = grey_png(tmp_path / "a.png", 1, size=(200, 200))
    data = good.read_bytes()
    (tmp_path / "a.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(CameraError) as info:
        FileFrameSource(tmp_path, fps=1000).read()
    assert str(tmp_path / "a.png") in str(info.value)


def test_files_source_without_images_raises_camera_error(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("no images here")
    with pytest.raises(CameraError) as info:
        FileFrameSource(tmp_path, fps=10)
    assert str(tmp_path) in str(info.value)
    with pytest.raises(CameraError) as info:
        resolve_image_paths(str(tmp_path / "nothing-*.png"))
    assert "nothing-*.png" in str(info.value)


def test_files_source_colour_image_becomes_its_luma(tmp_path: Path) -> None:
    rgb = np.zeros((2, 3, 3), dtype=np.uint8)
    rgb[0, 0] = (255, 0, 0)
    rgb[0, 1] = (0, 255, 0)
    rgb[0, 2] = (0, 0, 255)
    rgb[1, :] = (255, 255, 255)
    Image.fromarray(rgb, mode="RGB").save(tmp_path / "colour.png")
    frame = FileFrameSource(tmp_path, fps=1000).read()
    assert frame is not None
    assert frame.luma.shape == (2, 3) and frame.luma.dtype == np.uint8
    # ITU-R 601 luma, as PIL's convert("L") and the Pi's Y plane
    assert frame.luma[0].tolist() == [76, 150, 29]
    assert frame.luma[1].tolist() == [255, 255, 255]


def test_frame_refuses_anything_but_a_2d_uint8_plane() -> None:
    Frame(luma=np.zeros((4, 4), dtype=np.uint8), ts_ns=1, seq=1)
    with pytest.raises(ValueError, match="2-D uint8"):
        Frame(luma=np.zeros((4, 4, 3), dtype=np.uint8), ts_ns=1, seq=1)
    with pytest.raises(ValueError, match="2-D uint8"):
        Frame(luma=np.zeros((4, 4), dtype=np.float32), ts_ns=1, seq=1)


def test_frame_repr_does_not_dump_the_pixels() -> None:
    frame = Frame(luma=np.full((100, 100), 7, dtype=np.uint8), ts_ns=5, seq=9)
    assert "7, 7" not in repr(frame) and "seq=9" in repr(frame)


def test_open_source_builds_the_files_camera_from_the_config(tmp_path: Path) -> None:
    write_frames(tmp_path, [None, None])
    src = open_source(CameraSection(source="files", path=tmp_path, fps=1000), threading.Event())
    assert isinstance(src, FileFrameSource)
    assert src.read() is not None and src.read() is not None and src.read() is None


# -- picamera2 (fake) -----------------------------------------------------------------------

@pytest.fixture
def picam(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The fake picamera2 module, importable as `picamera2`, with an empty script."""
    for name in FAKE_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.syspath_prepend(str(FAKES))
    for name in ("picamera2", "libcamera"):
        sys.modules.pop(name, None)
    import picamera2

    picamera2.reset()
    yield picamera2
    picamera2.reset()
    for name in ("picamera2", "libcamera"):
        sys.modules.pop(name, None)


def random_lumas(n: int, size: tuple[int, int], seed: int = 1) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, size=(size[1], size[0]), dtype=np.uint8) for _ in range(n)]


def open_picam(picam: Any, size: tuple[int, int] = (100, 74), fps: float = 100,
               stall_timeout_s: float = 2.0, **kw: Any) -> Picamera2Source:
    """A Picamera2Source over the fake module `picam` (the fixture makes it importable)."""
    assert picam.script is not None
    return Picamera2Source(size=size, fps=fps, stall_timeout_s=stall_timeout_s, **kw)


def test_picamera2_source_extracts_the_y_plane_exactly_from_padded_yuv420(picam: Any) -> None:
    lumas = random_lumas(3, (100, 74))
    picam.script.frames.extend(lumas)
    src = open_picam(picam)
    cam = picam.script.instances[-1]
    lores = cam.stream_configuration("lores")
    assert lores["format"] == "YUV420" and lores["stride"] > 100  # there is padding to crop
    try:
        for expected in lumas:
            frame = src.read()
            assert frame is not None
            assert frame.luma.shape == (74, 100) and frame.luma.dtype == np.uint8
            np.testing.assert_array_equal(frame.luma, expected)
    finally:
        src.close()
    assert cam.held == 0, "every captured request must be released"


def test_picamera2_source_copies_the_plane_before_the_request_goes_back(picam: Any) -> None:
    (luma,) = random_lumas(1, (100, 74))
    picam.script.frames.append(luma)
    src = open_picam(picam)
    frame = src.read()
    src.close()
    # the fake overwrote the released buffer with 0xEE: a view would have changed
    assert frame is not None
    np.testing.assert_array_equal(frame.luma, luma)


def test_picamera2_source_uses_the_size_the_camera_actually_configured(picam: Any) -> None:
    # picamera2 aligns sizes (to 2 here): 101x75 becomes 100x74
    picam.script.frames.extend(random_lumas(1, (100, 74)))
    src = open_picam(picam, size=(101, 75))
    frame = src.read()
    src.close()
    assert (src.width, src.height) == (100, 74)
    assert frame is not None and frame.luma.shape == (74, 100)


def test_picamera2_source_asks_for_a_lores_yuv420_stream_at_the_frame_rate(picam: Any) -> None:
    src = open_picam(picam, size=(320, 240), fps=20)
    cam = picam.script.instances[-1]
    lores = dict(cam.stream_configuration("lores"))
    src.close()
    assert lores["format"] == "YUV420" and lores["size"] == (320, 240)
    assert cam.controls["FrameDurationLimits"] == (50000, 50000)  # FrameRate 20 -> 50 ms
    assert "AfMode" not in cam.controls  # not advertised by this camera: never set
    assert not cam.is_open and not cam.started


def test_picamera2_source_main_stream_is_never_smaller_than_lores(picam: Any) -> None:
    seen: dict[str, Any] = {}
    original = picam.Picamera2.configure

    def spy(self: Any, config: Any = None) -> None:
        seen.update(main=config["main"]["size"], lores=config["lores"]["size"])
        original(self, config)

    picam.Picamera2.configure = spy
    try:
        src = open_picam(picam, size=(1280, 960))
        src.close()
    finally:
        picam.Picamera2.configure = original
    assert seen["lores"] == (1280, 960)
    assert seen["main"][0] >= 1280 and seen["main"][1] >= 960


def test_picamera2_source_turns_on_continuous_autofocus_where_advertised(picam: Any) -> None:
    picam.script.autofocus = True
    src = open_picam(picam)
    cam = picam.script.instances[-1]
    src.close()
    import libcamera

    assert cam.controls["AfMode"] == libcamera.controls.AfModeEnum.Continuous


def test_picamera2_source_autofocus_off_in_config_is_respected(picam: Any) -> None:
    picam.script.autofocus = True
    src = open_picam(picam, autofocus=False)
    cam = picam.script.instances[-1]
    src.close()
    assert "AfMode" not in cam.controls


def test_picamera2_source_timestamp_is_the_sensor_timestamp(picam: Any) -> None:
    picam.script.frames.extend(random_lumas(4, (100, 74)))
    before = time.monotonic_ns()
    src = open_picam(picam, fps=50)
    cam = picam.script.instances[-1]
    frames = [src.read() for _ in range(4)]
    src.close()
    after = time.monotonic_ns()
    stamps = [f.ts_ns for f in frames if f]
    assert stamps == cam.timestamps[:4]
    assert before <= stamps[0] and stamps[-1] <= after
    assert [f.seq for f in frames if f] == [1, 2, 3, 4]
    assert all(np.diff(stamps) >= 0.9 * 20_000_000)  # 50 fps: frames 20 ms apart


def test_picamera2_source_stall_raises_camera_stalled_after_the_timeout(picam: Any) -> None:
    picam.script.frames.extend(random_lumas(2, (100, 74)))
    picam.script.stall_after = 2  # then the frames simply stop, as libcamera does
    src = open_picam(picam, stall_timeout_s=0.3)
    cam = picam.script.instances[-1]
    assert src.read() is not None and src.read() is not None
    started = time.monotonic()
    with pytest.raises(CameraStalled) as info:
        src.read()
    waited = time.monotonic() - started
    src.close()
    assert waited >= 0.3 * 0.95, "gave up before stall_timeout_s"
    assert "0.3" in str(info.value)
    assert cam.cancel_count >= 1, "the timed-out capture must be flushed"
    assert isinstance(info.value, CameraError)


def test_picamera2_source_rides_out_a_gap_shorter_than_the_stall_timeout(picam: Any) -> None:
    lumas = random_lumas(3, (100, 74))
    picam.script.frames.extend(lumas)
    picam.script.stall_after = 1
    picam.script.stall_for_s = 0.7  # longer than one 0.5 s capture wait, shorter than 2 s
    src = open_picam(picam, stall_timeout_s=2.0)
    cam = picam.script.instances[-1]
    first, second = src.read(), src.read()
    src.close()
    assert cam.cancel_count >= 1
    assert first is not None and second is not None
    np.testing.assert_array_equal(first.luma, lumas[0])
    # without cancel_all_and_flush the abandoned capture would have eaten frame 2
    np.testing.assert_array_equal(second.luma, lumas[1])
    assert second.seq == 2


def test_picamera2_source_read_returns_none_once_stopped(picam: Any) -> None:
    picam.script.stall_after = 0  # no frame ever
    stop = threading.Event()
    src = open_picam(picam, stall_timeout_s=30, stop=stop)
    result: list[Any] = []
    reader = threading.Thread(target=lambda: result.append(src.read()))
    reader.start()
    time.sleep(0.05)
    stop.set()
    reader.join(timeout=5)
    src.close()
    assert not reader.is_alive() and result == [None]


def test_picamera2_source_without_a_camera_raises_camera_error(picam: Any) -> None:
    picam.script.cameras = 0  # picamera2 0.3.36: IndexError from global_camera_info()
    with pytest.raises(CameraError) as info:
        open_picam(picam)
    assert "no usable camera" in str(info.value)


def test_picamera2_source_close_stops_and_closes_the_camera(picam: Any) -> None:
    src = open_picam(picam)
    cam = picam.script.instances[-1]
    assert cam.started
    src.close()
    assert not cam.started and not cam.is_open


def test_open_source_builds_picamera2_from_the_config(picam: Any) -> None:
    picam.script.frames.extend(random_lumas(1, (160, 120)))
    src = open_source(CameraSection(source="picamera2", size=(160, 120), fps=30,
                                    stall_timeout_s=0.5, autofocus=False), threading.Event())
    assert isinstance(src, Picamera2Source)
    frame = src.read()
    src.close()
    assert frame is not None and frame.luma.shape == (120, 160)
    assert src.stall_timeout_s == 0.5


def test_picamera2_source_missing_module_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    sys.modules.pop("picamera2", None)
    assert importlib.util.find_spec("picamera2") is None, "a real picamera2 is installed here"
    with pytest.raises(CameraError) as info:
        Picamera2Source(size=(640, 480), fps=15)
    message = str(info.value)
    assert "apt install python3-picamera2" in message
    assert "--system-site-packages" in message
    assert "picamera2" in message


def test_picamera2_source_missing_libcamera_says_how_to_install_it(
        picam: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # picamera2 pip-installed into an isolated venv: `No module named 'libcamera'` (#466)
    sys.modules.pop("picamera2", None)
    monkeypatch.setitem(sys.modules, "libcamera", None)
    with pytest.raises(CameraError) as info:
        Picamera2Source(size=(640, 480), fps=15)
    assert "apt install python3-picamera2" in str(info.value)
    assert "libcamera" in str(info.value)


def test_picamera2_source_numpy_abi_mismatch_is_a_camera_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a pip numpy 2.x next to apt's simplejpeg: `import picamera2` raises ValueError (#1088)
    pkg = tmp_path / "picamera2"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(
        "raise ValueError('numpy.dtype size changed, may indicate binary incompatibility. "
        "Expected 96 from C header, got 88 from PyObject')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("picamera2", None)
    try:
        with pytest.raises(CameraError) as info:
            Picamera2Source(size=(640, 480), fps=15)
    finally:
        sys.modules.pop("picamera2", None)
    assert "apt install python3-picamera2" in str(info.value)
    assert "numpy" in str(info.value)


def test_fake_picamera2_is_scripted_from_the_environment_in_a_subprocess(tmp_path: Path) -> None:
    """The way a daemon subprocess uses the fake: PYTHONPATH=tests/fakes and FAKE_PICAMERA2_*."""
    write_frames(tmp_path / "frames", ["ENV-ONE", None, ["ENV-TWO", "ENV-THREE"]])
    code = textwrap.dedent("""
        from gate.scan.camera import Picamera2Source
        from gate.scan.decode import make_decoder
        from gate.errors import CameraStalled
        src = Picamera2Source(size=(640, 480), fps=60, stall_timeout_s=0.3)
        dec = make_decoder("zxing")
        try:
            while True:
                frame = src.read()
                print(frame.seq, sorted(c.data.decode() for c in dec.decode(frame.luma)))
        except CameraStalled:
            print("stalled")
        finally:
            src.close()
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAKE_PICAMERA2_")}
    env |= {"PYTHONPATH": str(FAKES), "FAKE_PICAMERA2_FRAMES": str(tmp_path / "frames"),
            "FAKE_PICAMERA2_STALL_AFTER": "3"}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "1 ['ENV-ONE']", "2 []", "3 ['ENV-THREE', 'ENV-TWO']", "stalled"]
