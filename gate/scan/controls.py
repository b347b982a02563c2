"""The [camera] exposure and focus keys as libcamera controls (picamera2 `set_controls` names).

Enum controls are passed as their integer values, which picamera2 accepts as the enums are
IntEnums, so the names of the Python bindings' enum members (which differ between libcamera
releases) never matter: AeMeteringMode 0 centre-weighted, 1 spot, 2 matrix; AfMode 0 manual,
2 continuous; AeFlickerMode 1 manual (libcamera control_ids_core.yaml / _rpi.yaml).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

METERING = {"centre": 0, "spot": 1, "matrix": 2}
AF_MANUAL, AF_CONTINUOUS = 0, 2
FLICKER_MANUAL = 1


class _CameraKeys(Protocol):
    @property
    def autofocus(self) -> bool: ...
    @property
    def metering(self) -> str: ...
    @property
    def exposure_value(self) -> float: ...
    @property
    def lens_position(self) -> float | None: ...
    @property
    def flicker_hz(self) -> int: ...


@dataclass(frozen=True)
class CameraTuning:
    """How the camera exposes and focuses; the defaults leave libcamera's own choices."""

    autofocus: bool = True
    metering: str = "centre"
    exposure_value: float = 0.0
    lens_position: float | None = None  # dioptres; set: manual focus there
    flicker_hz: int = 0                 # 50 or 60: mains flicker to avoid; 0: off

    @classmethod
    def from_section(cls, camera: _CameraKeys) -> CameraTuning:
        return cls(camera.autofocus, camera.metering, camera.exposure_value,
                   camera.lens_position, camera.flicker_hz)


def libcamera_controls(t: CameraTuning, advertised: Mapping[str, Any]
                       ) -> tuple[dict[str, Any], list[str]]:
    """The controls to set, and the names of those this camera does not advertise (left out:
    picamera2 raises on an unadvertised control)."""
    wanted: dict[str, Any] = {}
    if t.metering != "centre":
        wanted["AeMeteringMode"] = METERING[t.metering]
    if t.exposure_value:
        wanted["ExposureValue"] = float(t.exposure_value)
    if t.lens_position is not None:
        # A fixed position at the presentation distance: Camera Module 3's autofocus hunts
        # for a second or more at 10-15 cm, while the visitor waits.
        wanted["AfMode"] = AF_MANUAL
        wanted["LensPosition"] = float(t.lens_position)
    elif t.autofocus and "AfMode" in advertised:
        wanted["AfMode"] = AF_CONTINUOUS
    if t.flicker_hz:
        # Lamps on 50 Hz mains flicker at 100 Hz: exposures of whole 10 ms periods hide it.
        wanted["AeFlickerMode"] = FLICKER_MANUAL
        wanted["AeFlickerPeriod"] = int(round(1e6 / (2 * t.flicker_hz)))
    controls = {k: v for k, v in wanted.items() if k in advertised}
    skipped = [k for k in wanted if k not in advertised]
    return controls, skipped
