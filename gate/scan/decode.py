"""QR decoding behind one small interface, with zxing-cpp (default) and pyzbar backends."""

from __future__ import annotations

import ctypes
import hashlib
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

import numpy as np

from ..errors import DecoderUnavailable
from .second_chance import Corners, Point, SecondChance

ZBAR_CFG_BINARY = 4                # zbar.h zbar_config_e: no character set conversion
ZBAR_FOURCC_Y800 = 0x30303859      # 'Y800': 8-bit grey, what pyzbar passes for numpy arrays


@dataclass(frozen=True)
class Code:
    """A decoded QR code: its payload bytes and where it stood in the frame.

    `repr` never shows the payload, so a Code can be logged without leaking a credential.
    """

    data: bytes = field(repr=False)
    corners: tuple[Point, ...] = ()

    @cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def center(self) -> tuple[float, float]:
        if not self.corners:
            return (0.0, 0.0)
        xs, ys = zip(*self.corners)
        return (sum(xs) / len(xs), sum(ys) / len(ys))

    def text(self) -> str:
        """The payload as text, for `gate decode` only (never for logs)."""
        return self.data.decode("utf-8", errors="replace")


class Decoder(Protocol):
    """Finds every QR code in a luma frame."""

    name: str

    def decode(self, luma: np.ndarray, main: np.ndarray | None = None) -> list[Code]:
        """Codes in ``luma``; ``main``, the same instant's full-resolution plane where the
        camera has one, may be used for second looks (corners stay in ``luma``'s pixels)."""
        ...


class ZxingDecoder:
    """zxing-cpp: fast, robust on camera frames, reads inverted codes; pip wheel, no system lib.

    Reads QR Code model 2 only. In zxing-cpp 3.x `BarcodeFormat.QRCode` is the whole family,
    Micro QR included, and a Micro QR M1 symbol (numeric, no error correction) can be faked by
    noise or by a restored crop: the benchmark once read "2336" off a hard frame that way.
    A gate never issues Micro QR, so it is never asked for.

    With ``second_chance`` (the default), a frame the first pass reads nothing in is read
    again in a few regions of interest (see second_chance.py); ``min_score`` is the texture score
    the detector's region needs. Only symbols that decoded (``Barcode.valid``: their error
    correction checks out) are ever returned, from either pass.
    """

    name = "zxing"

    def __init__(self, second_chance: bool = True, min_score: float = 1.5) -> None:
        try:
            import zxingcpp
        except ImportError as exc:
            raise DecoderUnavailable(f"zxing-cpp is not installed: pip install zxing-cpp ({exc})") from exc
        self._zx = zxingcpp
        self._formats = qr_formats(zxingcpp)
        self.rescue: SecondChance | None = (
            SecondChance(self._read_restored, min_score) if second_chance else None)

    def decode(self, luma: np.ndarray, main: np.ndarray | None = None) -> list[Code]:
        rescue = self.rescue
        found = self._zx.read_barcodes(luma, formats=self._formats,
                                       return_errors=rescue is not None)
        codes = [Code(data=bytes(b.bytes), corners=_corners(b)) for b in found if b.valid]
        if rescue is None:
            return codes
        if codes:
            rescue.saw([c.corners for c in codes], luma.shape)
            return codes
        failed = [_corners(b) for b in found]  # detected, not decoded: zxing knows where
        return [Code(data=data, corners=corners)
                for data, corners in rescue.rescue(luma, failed, main=main,
                                                   main_reader=self._read_crop)]

    def _read_crop(self, crop: np.ndarray) -> list[tuple[bytes, Corners]]:
        """Read a main-stream crop as it is (a strided view is fine), decoded symbols only."""
        return [(bytes(b.bytes), _corners(b))
                for b in self._zx.read_barcodes(crop, formats=self._formats) if b.valid]

    def _read_restored(self, image: np.ndarray) -> list[tuple[bytes, Corners]]:
        """Read a restored, upscaled crop: at that size only, decoded symbols only."""
        return [(bytes(b.bytes), _corners(b))
                for b in self._zx.read_barcodes(image, formats=self._formats,
                                                try_downscale=False) if b.valid]


def qr_formats(zxingcpp: Any) -> Any:
    """The formats argument for QR Code model 2 only (a list: `|` is deprecated in 3.1)."""
    fmt = zxingcpp.BarcodeFormat
    return [getattr(fmt, "QRCodeModel2", fmt.QRCode)]  # before 3.0 QRCode was model 2 alone


def _corners(barcode: Any) -> Corners:
    p = barcode.position
    return tuple((int(pt.x), int(pt.y))
                 for pt in (p.top_left, p.top_right, p.bottom_right, p.bottom_left))


class PyzbarDecoder:
    """pyzbar over the zbar system library (apt-get install libzbar0); the fallback backend.

    zbar reads only dark-on-light codes, so a frame where it finds nothing is tried once more
    as its negative (`try_inverted`): a phone in dark mode shows a light-on-dark pass. That
    doubles the cost of a frame without a code; the idle skip spares most of them.
    """

    name = "pyzbar"

    def __init__(self, try_inverted: bool = True) -> None:
        self.try_inverted = try_inverted
        try:
            from pyzbar import pyzbar, wrapper  # noqa: F401  (pyzbar loads the zbar library)
        except ImportError as exc:
            if "zbar shared library" in str(exc):
                raise DecoderUnavailable(
                    "pyzbar cannot find the zbar library: apt-get install libzbar0") from exc
            raise DecoderUnavailable(f"pyzbar is not installed: pip install pyzbar ({exc})") from exc
        self._zb = wrapper

    def decode(self, luma: np.ndarray, main: np.ndarray | None = None) -> list[Code]:
        codes = self._scan(luma)  # zbar reports no failed detections to look at in main
        if not codes and self.try_inverted:
            codes = self._scan(np.subtract(255, luma, dtype=np.uint8))
        return codes

    def _scan(self, luma: np.ndarray) -> list[Code]:
        # Not pyzbar.decode(): it leaves zbar's text conversion on, which re-encodes a binary
        # payload (bytes that are not UTF-8 are taken as Latin-1 and turned into UTF-8), so
        # its hash would differ from zxing's. The same steps through pyzbar's ctypes wrapper,
        # plus ZBAR_CFG_BINARY (zbar >= 0.23; missing from pyzbar's ZBarConfig enum).
        zb = self._zb
        height, width = luma.shape
        pixels = np.ascontiguousarray(luma, dtype=np.uint8).tobytes()
        scanner = zb.zbar_image_scanner_create()
        image = zb.zbar_image_create()
        try:
            for symbol in zb.ZBarSymbol:
                zb.zbar_image_scanner_set_config(scanner, symbol, zb.ZBarConfig.CFG_ENABLE,
                                                 int(symbol == zb.ZBarSymbol.QRCODE))
            zb.zbar_image_scanner_set_config(scanner, zb.ZBarSymbol.QRCODE, ZBAR_CFG_BINARY, 1)
            zb.zbar_image_set_format(image, ZBAR_FOURCC_Y800)
            zb.zbar_image_set_size(image, width, height)
            zb.zbar_image_set_data(image, ctypes.c_char_p(pixels), len(pixels), None)
            zb.zbar_scan_image(scanner, image)
            codes = []
            symbol = zb.zbar_image_first_symbol(image)
            while symbol:
                data = ctypes.string_at(zb.zbar_symbol_get_data(symbol),
                                        zb.zbar_symbol_get_data_length(symbol))
                corners = tuple((int(zb.zbar_symbol_get_loc_x(symbol, i)),
                                 int(zb.zbar_symbol_get_loc_y(symbol, i)))
                                for i in range(zb.zbar_symbol_get_loc_size(symbol)))
                codes.append(Code(data=data, corners=corners))
                symbol = zb.zbar_symbol_next(symbol)
            return codes
        finally:
            zb.zbar_image_destroy(image)
            zb.zbar_image_scanner_destroy(scanner)


BACKENDS: dict[str, type] = {"zxing": ZxingDecoder, "pyzbar": PyzbarDecoder}


def make_decoder(backend: str, second_chance: bool = True, min_score: float = 1.5) -> Decoder:
    """The named backend; ``second_chance`` and ``min_score`` apply to zxing only (pyzbar
    returns no failed detections nor a validity flag to build them on)."""
    if backend not in BACKENDS:
        raise DecoderUnavailable(f"unknown decoder backend {backend!r} "
                                 f"(choose from {', '.join(BACKENDS)})")
    if backend == "zxing":
        return ZxingDecoder(second_chance=second_chance, min_score=min_score)
    decoder: Decoder = BACKENDS[backend]()
    return decoder
