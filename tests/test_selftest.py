"""Technician self-tests: `gate test-relay` pulses the relay once and nothing else;
`gate test-camera` saves one frame and measures the QR code in it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from gpiozero import DigitalOutputDevice
from gpiozero.pins.mock import MockFactory
from PIL import Image

from gate.config import load_config
from gate.errors import GateError
from gate.selftest import measure, modules_from_finder, run_relay_test
from tests.support.daemon import REPO, journal_events
from tests.support.gatehelpers import ALICE, setup_config, states
from tests.support.qrimages import qr_frame, qr_modules, write_png

RELAY = 17


def gate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gate", *args], capture_output=True, text=True,
                          timeout=60, cwd=REPO)


# -- test-relay ---------------------------------------------------------------------------------

@pytest.mark.parametrize("active_high", [True, False])
def test_selftest_relay_pulses_once_for_the_asked_time(tmp_path: Path, active_high: bool) -> None:
    config = setup_config(tmp_path, door={"relay_active_high": active_high})
    factory = MockFactory()
    pin = factory.pin(RELAY)
    lines: list[str] = []
    report = run_relay_test(load_config(config), 0.3, lines.append, pin_factory=factory)
    locked, unlocked = (not active_high), active_high  # the line level for each state
    claimed = [False] if locked is False else [False, True]  # an unclaimed mock pin reads low
    assert states(pin) == claimed + [unlocked, locked]
    assert 0.25 <= pin.states[-1].timestamp <= 0.3 + 0.5
    assert [s for _, s in report.changes] == ["unlocked", "locked"]
    assert "for 0.3 s" in lines[0] and "strike" in lines[0]
    assert pin.function == "input"  # released after the test


def test_selftest_relay_cli_journals_the_pulse(tmp_path: Path) -> None:
    config = setup_config(tmp_path, door={"open_s": 0.2, "fail_mode": "safe"})
    proc = gate("test-relay", "--config", str(config))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "maglock" in proc.stdout and "unlocked -> locked" in proc.stdout
    events = journal_events(tmp_path / "state")
    doors = [e for e in events if e["kind"] == "door"]
    assert [(e["state"], e["source"]) for e in doors] == [("unlocked", "test-relay"),
                                                          ("locked", "test-relay")]
    assert any(e.get("event") == "test_relay" for e in events)


def test_selftest_relay_refuses_a_pin_the_daemon_holds(tmp_path: Path) -> None:
    config = setup_config(tmp_path)
    factory = MockFactory()
    held = DigitalOutputDevice(RELAY, pin_factory=factory)  # as the running daemon would
    try:
        with pytest.raises(GateError, match="stop the daemon"):
            run_relay_test(load_config(config), 0.1, print, pin_factory=factory)
        assert states(factory.pin(RELAY)) == [False]
    finally:
        held.close()


def test_selftest_relay_never_builds_the_camera(tmp_path: Path) -> None:
    config = setup_config(tmp_path, camera={"source": "picamera2"})  # no camera here
    proc = gate("test-relay", "--config", str(config), "--seconds", "0.1")
    assert proc.returncode == 0, proc.stdout + proc.stderr


# -- test-camera --------------------------------------------------------------------------------

def camera_config(tmp_path: Path, luma: np.ndarray, **overrides: dict) -> Path:
    frames = tmp_path / "cam"
    frames.mkdir()
    write_png(frames / "frame-0000.png", luma)
    return setup_config(tmp_path, camera={"path": str(frames), "loop": False}, **overrides)


@pytest.mark.parametrize("backend", ["zxing", "pyzbar"])
def test_selftest_camera_saves_the_frame_and_reports_pixels_per_module(tmp_path: Path,
                                                                       backend: str) -> None:
    luma = qr_frame(ALICE, module_px=5)  # version 1: 21 modules of 5 px
    config = camera_config(tmp_path, luma, decoder={"backend": backend})
    out = tmp_path / "shot.png"
    proc = gate("test-camera", "--config", str(config), "--output", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "QR 1: read, 105 px wide, 21 modules (version 1), 5.0 px per module: good" \
        in proc.stdout, proc.stdout
    assert ALICE not in proc.stdout + proc.stderr
    saved = np.asarray(Image.open(out))
    assert saved.shape == luma.shape
    assert (saved[:40] == luma[:40]).all(), "the frame away from the code is kept for aiming"


@pytest.mark.parametrize("backend", ["zxing", "pyzbar"])
def test_selftest_camera_saved_frame_decodes_to_nothing_with_either_backend(
        tmp_path: Path, backend: str) -> None:
    from gate.scan.decode import make_decoder
    from gate.selftest import run_camera_test

    # two codes, the second dark-mode (inverted), which zbar reads only when nothing else
    # is in view: each must be painted over all the same
    luma = qr_frame([ALICE, "GATE-TEST-SECOND-22"], module_px=4)
    split = 20 + qr_modules(ALICE).shape[1] * 4 + 10
    luma[:, split:] = 255 - luma[:, split:]
    assert len(make_decoder("zxing").decode(luma)) == 2, "the scene must hold two readable codes"
    config = camera_config(tmp_path, luma, decoder={"backend": backend})
    out = tmp_path / "shot.png"
    report = run_camera_test(load_config(config), out)
    assert report.codes and report.masked >= 2
    assert all(c.px_per_module == 4.0 for c in report.codes), report.codes  # measured before
    saved = np.asarray(Image.open(out))
    for reader in ("zxing", "pyzbar"):
        assert make_decoder(reader).decode(saved) == [], f"{reader} still reads the saved frame"
    assert ALICE.encode() not in out.read_bytes()


def test_selftest_camera_png_is_0600_even_over_a_wider_existing_file(tmp_path: Path) -> None:
    import os
    import stat
    config = camera_config(tmp_path, qr_frame(ALICE, module_px=5))
    out = tmp_path / "shot.png"
    out.write_bytes(b"old")
    out.chmod(0o666)
    proc = gate("test-camera", "--config", str(config), "--output", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    assert "painted over" in proc.stdout
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".test-camera-")] == []


def test_selftest_camera_warns_when_modules_are_too_small(tmp_path: Path) -> None:
    config = camera_config(tmp_path, qr_frame(ALICE, module_px=2))
    proc = gate("test-camera", "--config", str(config), "--output", str(tmp_path / "s.png"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2.0 px per module: too small" in proc.stdout


def test_selftest_camera_without_a_code_exits_3_and_still_saves(tmp_path: Path) -> None:
    config = camera_config(tmp_path, qr_frame([]))
    proc = gate("test-camera", "--config", str(config))
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "QR: none read" in proc.stdout
    assert (tmp_path / "state" / "test-camera.png").exists()  # default: in the state dir


def test_selftest_camera_that_cannot_open_exits_1_with_the_reason(tmp_path: Path) -> None:
    config = setup_config(tmp_path, camera={"path": str(tmp_path / "nothing-here")})
    proc = gate("test-camera", "--config", str(config))
    assert proc.returncode == 1
    assert "nothing-here" in proc.stderr


@pytest.mark.parametrize("module_px", [3, 4, 7])
def test_selftest_module_count_from_the_finder_when_the_version_is_unknown(module_px: int
                                                                          ) -> None:
    # A rotated code, measured as pyzbar without zxing-cpp would have to: no version.
    from gate.scan.decode import make_decoder

    luma = np.asarray(Image.fromarray(qr_frame("X" * 60, module_px=module_px))
                      .rotate(25, expand=True, fillcolor=200))
    [code] = make_decoder("zxing").decode(luma)
    report = measure(luma, code.corners, None, code.sha256)
    assert report.method == "finder" and report.modules == 29  # version 3
    assert report.px_per_module == pytest.approx(module_px, abs=0.3)


def test_selftest_finder_gives_up_rather_than_guess() -> None:
    blank = np.full((200, 200), 128, dtype=np.uint8)
    assert modules_from_finder(blank, [(10, 10), (100, 10), (100, 100), (10, 100)]) is None


def test_selftest_camera_reports_sharpness_exposure_and_a_suggestion(tmp_path: Path) -> None:
    import re

    from PIL import ImageFilter

    luma = qr_frame(ALICE, module_px=5)
    luma[luma == 255] = 230  # bright, not saturated
    soft = np.asarray(Image.fromarray(luma).filter(ImageFilter.GaussianBlur(2.2)))
    config = camera_config(tmp_path, soft)
    proc = gate("test-camera", "--config", str(config), "--output", str(tmp_path / "s.png"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"sharpness: blur [\d.]+ px; exposure: mean \d+ of 255, 0\.0% clipped",
                     proc.stdout), proc.stdout
    assert "suggestion: the code is blurred" in proc.stdout and "lens_position" in proc.stdout
    (tmp_path / "b").mkdir()
    sharp = camera_config(tmp_path / "b", luma)
    proc = gate("test-camera", "--config", str(sharp), "--output", str(tmp_path / "t.png"))
    assert proc.returncode == 0 and "suggestion:" not in proc.stdout, proc.stdout
