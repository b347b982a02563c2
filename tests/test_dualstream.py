"""The main stream beside lores: second looks at full resolution, on the files camera and on
the picamera2 fake; the [camera] exposure and focus keys as libcamera controls; recording."""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageFilter

from gate.config import load_config
from gate.errors import ConfigError
from gate.scan.camera import FileFrameSource, Picamera2Source, lores_and_main
from gate.scan.controls import CameraTuning, libcamera_controls
from gate.scan.decode import make_decoder
from gate.scan.recorder import FrameRecorder
from tests.support.daemon import write_config
from tests.support.qrimages import qr_frame, write_png

ALICE = "GATE-TEST-ALICE-1"
FAKES = Path(__file__).resolve().parent / "fakes"
MAIN, LORES = (1920, 1440), (640, 480)


def far_code() -> np.ndarray:
    """A code 4 main pixels a module (1.33 at lores: too small there), slightly blurred."""
    big = qr_frame(ALICE, size=MAIN, module_px=4)
    return np.asarray(Image.fromarray(big).filter(ImageFilter.GaussianBlur(1.0)))


def test_main_stream_crop_reads_a_code_too_small_for_lores() -> None:
    lores, main = lores_and_main(far_code(), LORES)
    assert lores.shape == (480, 640) and main is not None and main.shape == (1440, 1920)
    assert make_decoder("zxing").decode(lores) == [], "lores alone cannot read it"
    decoder = make_decoder("zxing")
    (code,) = decoder.decode(lores, main=main)
    assert code.data == ALICE.encode()
    assert decoder.rescue is not None and decoder.rescue.main_reads == 1
    xs = [x for x, _ in code.corners]
    assert 0 < min(xs) < max(xs) < 640, "corners come back in lores pixels"


def test_files_camera_simulates_both_streams_only_with_a_lores_size(tmp_path: Path) -> None:
    write_png(tmp_path / "f.png", far_code())
    frame = FileFrameSource(tmp_path, fps=1000, lores_size=LORES).read()
    assert frame is not None and frame.luma.shape == (480, 640)
    assert frame.main is not None and frame.main.shape == (1440, 1920)
    plain = FileFrameSource(tmp_path, fps=1000).read()
    assert plain is not None and plain.main is None and plain.luma.shape == (1440, 1920)


def test_config_main_size_must_cover_lores(tmp_path: Path) -> None:
    path = write_config(tmp_path / "g.toml", {"camera": {"size": [640, 480],
                                                          "main_size": [320, 240]}})
    with pytest.raises(ConfigError, match=r"\[camera\] main_size: must be at least size"):
        load_config(path)


def test_tuning_maps_to_libcamera_controls_and_skips_what_the_camera_lacks() -> None:
    t = CameraTuning(autofocus=True, metering="spot", exposure_value=-1.0, lens_position=6.7,
                     flicker_hz=50)
    full = {k: None for k in ("AeMeteringMode", "ExposureValue", "AfMode", "LensPosition",
                              "AeFlickerMode", "AeFlickerPeriod")}
    controls, skipped = libcamera_controls(t, full)
    assert controls == {"AeMeteringMode": 1, "ExposureValue": -1.0, "AfMode": 0,
                        "LensPosition": 6.7, "AeFlickerMode": 1, "AeFlickerPeriod": 10000}
    assert skipped == []
    controls, skipped = libcamera_controls(CameraTuning(flicker_hz=60, lens_position=5.0),
                                           {"AeFlickerMode": None, "AeFlickerPeriod": None})
    assert controls == {"AeFlickerMode": 1, "AeFlickerPeriod": 8333}
    assert skipped == ["AfMode", "LensPosition"]
    assert libcamera_controls(CameraTuning(), full) == ({"AfMode": 2}, [])


@pytest.fixture
def picam(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.syspath_prepend(str(FAKES))
    for name in [m for m in sys.modules if m in ("picamera2", "libcamera")]:
        monkeypatch.delitem(sys.modules, name)
    for key in [k for k in os.environ if k.startswith("FAKE_PICAMERA2_")]:
        monkeypatch.delenv(key)
    import picamera2
    picamera2.reset()
    yield picamera2
    picamera2.reset()


def test_picamera2_main_stream_is_a_held_view_released_on_the_next_read(picam: Any) -> None:
    picam.script.frames.extend([far_code(), far_code()])
    picam.script.autofocus = True
    src = Picamera2Source(LORES, fps=100, main_size=MAIN,
                          tuning=CameraTuning(metering="matrix", lens_position=6.7))
    try:
        cam = picam.script.instances[0]
        assert cam.camera_config["main"]["format"] == "YUV420"
        assert cam.controls["AeMeteringMode"] == 2 and cam.controls["AfMode"] == 0
        assert cam.controls["LensPosition"] == 6.7
        frame = src.read()
        assert frame is not None and frame.main is not None
        assert frame.main.shape == (1440, 1920) and frame.luma.shape == (480, 640)
        assert cam.held == 1, "the main view's request stays with us until the next read"
        (code,) = make_decoder("zxing").decode(frame.luma, main=frame.main)
        assert code.data == ALICE.encode()
        old_main = frame.main
        assert src.read() is not None and cam.held == 1
        assert (old_main == 0xEE).all(), "the earlier request went back to the camera"
    finally:
        src.close()
    assert cam.held == 0


def test_picamera2_without_main_size_releases_every_request(picam: Any) -> None:
    src = Picamera2Source(LORES, fps=100)
    try:
        frame = src.read()
        assert frame is not None and frame.main is None
        assert picam.script.instances[0].held == 0
    finally:
        src.close()


def test_recorder_keeps_the_newest_frames_0600_in_a_0700_directory(tmp_path: Path) -> None:
    rec = FrameRecorder(tmp_path / "rec", keep=3)
    for seq in range(5):
        assert rec.record(1000 + seq, seq, np.full((48, 64), seq * 10, np.uint8))
    rec.close()
    files = sorted((tmp_path / "rec").iterdir())
    assert [int(np.asarray(Image.open(f))[0, 0]) for f in files] == [20, 30, 40]
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
    assert stat.S_IMODE((tmp_path / "rec").stat().st_mode) == 0o700
    assert rec.recorded == 5 and rec.dropped == 0


@pytest.mark.slow
def test_daemon_records_frames_with_a_code_and_replay_reads_them_back(tmp_path: Path) -> None:
    import subprocess

    from tests.support.daemon import REPO, gate_config, write_allowlist
    from tests.support.qrimages import write_frames

    frames = write_frames(tmp_path / "frames", [None, None, ALICE, ALICE, None])[0].parent
    rec = tmp_path / "rec"
    config = gate_config(tmp_path, frames, write_allowlist(tmp_path / "allow.csv", []),
                         camera={"record_dir": str(rec), "record_keep": 10},
                         decoder={"idle_skip": False})
    run = subprocess.run([sys.executable, "-m", "gate", "run", "--config", str(config)],
                         capture_output=True, text=True, timeout=60, cwd=REPO)
    assert run.returncode == 0, run.stdout + run.stderr
    kept = sorted(rec.iterdir())
    assert len(kept) == 2, "only the frames that held a code"
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in kept)
    replay = subprocess.run([sys.executable, "-m", "gate", "replay", "--config", str(config),
                             str(rec)], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert "read rate: 2 of 2 frames held a code read (100.0%)" in replay.stdout
