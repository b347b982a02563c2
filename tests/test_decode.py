"""QR decoding: both backends on real QR images drawn by segno, exact payload bytes, positions,
the missing-libzbar0 error, and the `gate decode` command."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gate.errors import DecoderUnavailable
from gate.scan.decode import Code, PyzbarDecoder, ZxingDecoder, make_decoder
from tests.support.qrimages import qr_frame, qr_modules, write_png

REPO = Path(__file__).resolve().parent.parent
BACKENDS = ["zxing", "pyzbar"]


@pytest.fixture(params=BACKENDS)
def decoder(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    return make_decoder(request.param)


def expected_corners(payloads: list[str | bytes], index: int, module_px: int,
                     size: tuple[int, int] = (640, 480)) -> list[tuple[int, int]]:
    """Where qr_frame drew code `index`: its symbol's outer corners (quiet zone excluded)."""
    x = 20
    for i, payload in enumerate(payloads):
        total = qr_modules(payload).shape[0]  # with the 4-module quiet zone each side
        side = total * module_px
        if i == index:
            y = (size[1] - side) // 2
            x0, y0 = x + 4 * module_px, y + 4 * module_px
            x1, y1 = x0 + (total - 8) * module_px, y0 + (total - 8) * module_px
            return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
        x += side + 20
    raise IndexError(index)


def assert_corners_near(code: Code, expected: list[tuple[int, int]], tolerance: float) -> None:
    assert len(code.corners) == 4, code.corners
    for ex, ey in expected:
        nearest = min(np.hypot(cx - ex, cy - ey) for cx, cy in code.corners)
        assert nearest <= tolerance, (code.corners, expected)


def test_decode_backends_have_their_names() -> None:
    assert make_decoder("zxing").name == "zxing" and isinstance(make_decoder("zxing"), ZxingDecoder)
    assert make_decoder("pyzbar").name == "pyzbar" and isinstance(make_decoder("pyzbar"), PyzbarDecoder)


def test_decode_unknown_backend_is_refused_with_the_choices() -> None:
    with pytest.raises(DecoderUnavailable) as info:
        make_decoder("opencv")
    assert "'opencv'" in str(info.value) and "zxing" in str(info.value) and "pyzbar" in str(info.value)


def test_decode_one_code_gives_payload_and_corners(decoder) -> None:  # type: ignore[no-untyped-def]
    payloads = ["GATE-PASS-000123"]
    codes = decoder.decode(qr_frame(payloads, module_px=6))
    assert [c.data for c in codes] == [b"GATE-PASS-000123"]
    assert_corners_near(codes[0], expected_corners(payloads, 0, 6), tolerance=6 * 1.5)
    (cx, cy) = codes[0].center
    assert 20 < cx < 640 and 0 < cy < 480


def test_decode_several_codes_in_one_frame_are_all_returned(decoder) -> None:  # type: ignore[no-untyped-def]
    payloads = ["LEFT-AAA", "MIDDLE-BBB", "RIGHT-CCC"]
    codes = decoder.decode(qr_frame(payloads, module_px=5))
    assert sorted(c.data for c in codes) == [b"LEFT-AAA", b"MIDDLE-BBB", b"RIGHT-CCC"]
    by_x = sorted(codes, key=lambda c: c.center[0])  # drawn left to right
    assert [c.data for c in by_x] == [b"LEFT-AAA", b"MIDDLE-BBB", b"RIGHT-CCC"]
    for i, code in enumerate(by_x):
        assert_corners_near(code, expected_corners(payloads, i, 5), tolerance=5 * 1.5)


@pytest.mark.parametrize("payload", [
    b"\x00\xff\xfe\x80binary\x01\x7f",           # not text at all
    "Zoë – 日本語 ✓ pass".encode(),        # UTF-8 text
    "caf\xe9".encode("latin-1"),                  # one byte that is not UTF-8
    bytes(range(256)),                            # every byte value
], ids=["binary", "utf8", "latin1", "all-bytes"])
def test_decode_payload_bytes_are_exact(decoder, payload: bytes) -> None:  # type: ignore[no-untyped-def]
    codes = decoder.decode(qr_frame([payload], size=(640, 480), module_px=4))
    assert [c.data for c in codes] == [payload]
    assert codes[0].sha256 == hashlib.sha256(payload).hexdigest()


def test_decode_both_backends_agree_on_the_hash_of_a_binary_pass() -> None:
    payload = b"\x93\x01SIGNED\xc0\xde\xff"
    frame = qr_frame([payload], module_px=5)
    hashes = {name: [c.sha256 for c in make_decoder(name).decode(frame)] for name in BACKENDS}
    assert hashes["zxing"] == hashes["pyzbar"] and len(hashes["zxing"]) == 1


@pytest.mark.parametrize("scene", ["uniform", "noise", "stripes"])
def test_decode_frame_without_a_code_gives_nothing(decoder, scene: str) -> None:  # type: ignore[no-untyped-def]
    if scene == "uniform":
        frame = np.full((480, 640), 200, dtype=np.uint8)
    elif scene == "noise":
        frame = np.random.default_rng(7).integers(0, 256, (480, 640), dtype=np.uint8)
    else:
        frame = np.tile(np.repeat(np.array([0, 255], dtype=np.uint8), 8), (480, 40))
    assert decoder.decode(frame) == []


def test_decode_a_strided_view_like_a_padded_y_plane(decoder) -> None:  # type: ignore[no-untyped-def]
    luma = qr_frame(["STRIDED-VIEW"], size=(320, 240), module_px=4)
    buffer = np.full((240 * 3 // 2, 384), 17, dtype=np.uint8)  # YUV420, stride 384 > 320
    buffer[:240, :320] = luma
    view = buffer[:240, :320]
    assert not view.flags["C_CONTIGUOUS"]
    assert [c.data for c in decoder.decode(view)] == [b"STRIDED-VIEW"]


def test_decode_zxing_reads_an_inverted_code() -> None:
    frame = 255 - qr_frame(["INVERTED-PASS"], module_px=6)
    assert [c.data for c in make_decoder("zxing").decode(frame)] == [b"INVERTED-PASS"]


def test_decode_pyzbar_reads_an_inverted_code_through_its_negative() -> None:
    frame = 255 - qr_frame(["DARK-MODE-PASS"], module_px=6)
    assert PyzbarDecoder(try_inverted=False).decode(frame) == []  # zbar alone cannot
    assert [c.data for c in PyzbarDecoder().decode(frame)] == [b"DARK-MODE-PASS"]


def test_decode_pyzbar_without_libzbar0_says_apt_get_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import pyzbar
    import pyzbar.pyzbar
    import pyzbar.wrapper
    import pyzbar.zbar_library as zbar_library

    real_find = zbar_library.find_library
    # what pyzbar sees on a machine without libzbar0: find_library('zbar') is None, so its
    # own load() raises ImportError('Unable to find zbar shared library') on import
    monkeypatch.setattr(zbar_library, "find_library",
                        lambda name: None if name == "zbar" else real_find(name))
    for name in ("pyzbar.pyzbar", "pyzbar.wrapper"):  # so that they import (and load) again
        monkeypatch.delitem(sys.modules, name)
        monkeypatch.delattr(pyzbar, name.split(".")[1])
    with pytest.raises(ImportError, match="Unable to find zbar shared library"):
        from pyzbar import pyzbar as _again  # noqa: F401  (the simulation is faithful)
    with pytest.raises(DecoderUnavailable) as info:
        make_decoder("pyzbar")
    assert "apt-get install libzbar0" in str(info.value)
    monkeypatch.undo()
    # and with the library back, the backend works again (nothing left broken)
    assert [c.data for c in make_decoder("pyzbar").decode(qr_frame(["BACK"]))] == [b"BACK"]


def test_decode_pyzbar_not_installed_says_pip_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import pyzbar

    for name in ("pyzbar.pyzbar", "pyzbar.wrapper"):
        monkeypatch.delitem(sys.modules, name)
        monkeypatch.delattr(pyzbar, name.split(".")[1])
    monkeypatch.setitem(sys.modules, "pyzbar", None)  # import pyzbar -> ImportError
    with pytest.raises(DecoderUnavailable) as info:
        make_decoder("pyzbar")
    assert "pip install pyzbar" in str(info.value)


def test_decode_code_repr_never_shows_the_payload() -> None:
    secret = b"SECRET-PASS-4711"
    code = make_decoder("zxing").decode(qr_frame([secret]))[0]
    for text in (repr(code), str(code), f"{code}", repr([code])):
        assert "SECRET" not in text and "4711" not in text, text
    assert code.text() == "SECRET-PASS-4711"


def test_decode_code_center_of_a_code_without_corners_is_origin() -> None:
    assert Code(data=b"x").center == (0.0, 0.0)
    assert Code(data=b"x", corners=((0, 0), (10, 0), (10, 10), (0, 10))).center == (5.0, 5.0)


# -- the gate decode command ----------------------------------------------------------------

def run_gate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gate", *args], capture_output=True, text=True,
                          timeout=60, cwd=REPO)


@pytest.mark.parametrize("backend", BACKENDS)
def test_decode_cli_prints_what_each_image_holds(tmp_path: Path, backend: str) -> None:
    one = write_png(tmp_path / "one.png", qr_frame(["CLI-ALPHA"]))
    two = write_png(tmp_path / "two.png", qr_frame(["CLI-BETA", "CLI-GAMMA"], module_px=5))
    empty = write_png(tmp_path / "empty.png", qr_frame([]))
    proc = run_gate("decode", "--backend", backend, str(one), str(two), str(empty))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert f"{one}: 1 code ({backend})" in out
    assert f"{two}: 2 codes ({backend})" in out
    assert f"{empty}: 0 codes" in out
    for payload in ("CLI-ALPHA", "CLI-BETA", "CLI-GAMMA"):
        assert f"'{payload}'" in out
    # each payload is listed under its own file
    assert out.index("CLI-ALPHA") < out.index(str(two)) < out.index("CLI-BETA")


def test_decode_cli_unreadable_image_names_it_and_fails(tmp_path: Path) -> None:
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not a png")
    good = write_png(tmp_path / "good.png", qr_frame(["STILL-READ"]))
    proc = run_gate("decode", str(bad), str(good))
    assert proc.returncode == 1
    assert f"{bad}: error" in proc.stdout
    assert "'STILL-READ'" in proc.stdout  # the other files are still decoded
