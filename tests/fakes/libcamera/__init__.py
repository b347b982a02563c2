"""A minimal fake of the `libcamera` Python bindings, only as much as picamera2 0.3.36 and
gate/scan/camera.py touch: `controls.AfModeEnum`, `controls.AfSpeedEnum`, `Transform` and
`ColorSpace`. The real module comes from apt (python3-libcamera) and cannot be built on x86.
"""

from __future__ import annotations

import enum
from types import SimpleNamespace


class _AfModeEnum(enum.IntEnum):
    Manual = 0
    Auto = 1
    Continuous = 2


class _AfSpeedEnum(enum.IntEnum):
    Normal = 0
    Fast = 1


controls = SimpleNamespace(AfModeEnum=_AfModeEnum, AfSpeedEnum=_AfSpeedEnum)


class Transform:
    def __init__(self, hflip: int = 0, vflip: int = 0, transpose: int = 0) -> None:
        self.hflip, self.vflip, self.transpose = hflip, vflip, transpose

    def __repr__(self) -> str:
        return f"<libcamera.Transform hflip={self.hflip} vflip={self.vflip}>"


class ColorSpace:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<libcamera.ColorSpace '{self.name}'>"

    @staticmethod
    def Sycc() -> "ColorSpace":
        return ColorSpace("sYCC")

    @staticmethod
    def Smpte170m() -> "ColorSpace":
        return ColorSpace("SMPTE170M")

    @staticmethod
    def Rec709() -> "ColorSpace":
        return ColorSpace("Rec709")
