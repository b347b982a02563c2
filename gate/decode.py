"""QR decoding behind one small interface, with zxing-cpp (default) and pyzbar backends."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property
from typing import Protocol

import numpy as np

from .errors import DecoderUnavailable

Point = tuple[int, int]


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

    def decode(self, luma: np.ndarray) -> list[Code]: ...


class ZxingDecoder:
    """zxing-cpp: fast, robust on camera frames, reads inverted codes; pip wheel, no system lib."""

    name = "zxing"

    def __init__(self) -> None:
        try:
            import zxingcpp
        except ImportError as exc:
            raise DecoderUnavailable(f"zxing-cpp is not installed: pip install zxing-cpp ({exc})")
        self._zx = zxingcpp
        self._formats = [zxingcpp.BarcodeFormat.QRCode]  # a list: `|` is deprecated in 3.1

    def decode(self, luma: np.ndarray) -> list[Code]:
        codes = []
        for b in self._zx.read_barcodes(luma, formats=self._formats):
            if not b.valid:
                continue
            p = b.position
            corners = tuple((int(pt.x), int(pt.y)) for pt in
                            (p.top_left, p.top_right, p.bottom_right, p.bottom_left))
            codes.append(Code(data=bytes(b.bytes), corners=corners))
        return codes


class PyzbarDecoder:
    """pyzbar over the zbar system library (apt-get install libzbar0); the fallback backend."""

    name = "pyzbar"

    def __init__(self) -> None:
        try:
            from pyzbar import pyzbar
        except ImportError as exc:
            if "zbar shared library" in str(exc):
                raise DecoderUnavailable(
                    "pyzbar cannot find the zbar library: apt-get install libzbar0") from exc
            raise DecoderUnavailable(f"pyzbar is not installed: pip install pyzbar ({exc})") from exc
        self._decode = pyzbar.decode
        self._symbols = [pyzbar.ZBarSymbol.QRCODE]

    def decode(self, luma: np.ndarray) -> list[Code]:
        return [Code(data=bytes(d.data), corners=tuple((int(p.x), int(p.y)) for p in d.polygon))
                for d in self._decode(luma, symbols=self._symbols)]


BACKENDS: dict[str, type] = {"zxing": ZxingDecoder, "pyzbar": PyzbarDecoder}


def make_decoder(backend: str) -> Decoder:
    try:
        cls = BACKENDS[backend]
    except KeyError:
        raise DecoderUnavailable(f"unknown decoder backend {backend!r} "
                                 f"(choose from {', '.join(BACKENDS)})") from None
    decoder: Decoder = cls()
    return decoder
