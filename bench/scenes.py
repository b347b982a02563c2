"""Synthetic entrance-camera frames: QR codes on a phone or paper, and empty entrance scenes.

Everything is drawn with numpy and Pillow from a caller's ``numpy.random.Generator``, so a
fixed seed gives the same frames on any machine. Frames are grayscale uint8 (the Y plane a
Pi camera's lores stream gives), sizes are ``(width, height)``.

How a frame is made, in the order a camera would see it:

1. an entrance: wall, door frame, signs, a tiled floor (a reflectance map), lit by an uneven
   illumination map (a ramp, a vignette and a ceiling lamp's pool);
2. optionally a person, and the code's carrier: a phone (emissive screen behind glass, a dark
   bezel, app chrome around the code, a glare band) or paper (reflective, lit like the wall);
   the carrier is a plane tilted in 3-D, rolled, and projected with a pinhole camera, so the
   code gets real perspective; it is rendered supersampled and box-filtered to frame pixels;
3. optical blur (Gaussian), then sensor noise (Gaussian), then rounding to uint8.

``ppm`` (pixels per module) is the mean module pitch of the imaged symbol:
``sqrt(area of the imaged symbol) / modules``; a tilt makes one direction finer than that.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import segno
from PIL import Image, ImageFilter

SIZES: dict[str, tuple[int, int]] = {"640x480": (640, 480), "1280x720": (1280, 720)}
DIFFICULTIES = ("easy", "medium", "hard")
QUIET = 4  # modules of quiet zone the app or print leaves around the symbol
DISTANCE = 3.0  # carrier distance from the camera, in symbol widths: how strong perspective is
BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


@dataclass(frozen=True)
class Preset:
    """Ranges a difficulty draws from; angles in degrees, levels in grey levels of 255."""

    ppm: tuple[float, float]
    blur: tuple[float, float]
    roll_max: float
    tilt_max: float
    noise: tuple[float, float]
    light: tuple[float, float]


# hard is the definition; medium has the same distortions halved; easy is mild.
# Blur is drawn from the upper half of "up to" (hard 0.75-1.5): a fixed-focus camera module is
# never sharp at hand-held range, and the lower half reads like a sharp frame (zxing-cpp reads
# 97-100% of hard frames with sigma < 0.75 and 12% with sigma > 1.15). Drawn this way, raw
# zxing-cpp reads 34.5% of the benchmark's 200 hard frames, as the issue measured (about 35%).
PRESETS: dict[str, Preset] = {
    "easy": Preset(ppm=(5.0, 8.0), blur=(0.0, 0.4), roll_max=10.0, tilt_max=8.0,
                   noise=(0.5, 2.0), light=(0.0, 0.15)),
    "medium": Preset(ppm=(3.5, 5.0), blur=(0.375, 0.75), roll_max=15.0, tilt_max=15.0,
                     noise=(1.0, 4.0), light=(0.15, 0.3)),
    "hard": Preset(ppm=(2.0, 3.5), blur=(0.75, 1.5), roll_max=30.0, tilt_max=30.0,
                   noise=(2.0, 8.0), light=(0.3, 0.6)),
}


@dataclass(frozen=True)
class SceneParams:
    """Everything that decides how one code frame looks (besides the entrance itself)."""

    ppm: float
    roll_deg: float  # in-plane rotation
    tilt_deg: float  # out-of-plane tilt: perspective skew
    tilt_axis_deg: float  # direction of the tilt axis in the carrier's plane
    blur_sigma: float  # optical blur, pixels
    noise_sigma: float  # sensor noise, grey levels
    light: float  # uneven light: 0 flat, 1 dark on one side
    glare: float  # phone glass reflection band, as a fraction of the illumination
    ambient: float  # mean illumination, grey levels a white wall would read
    brightness: float  # phone screen white, grey levels
    black: float  # dark module level as a fraction of the light one (screen bleed, ink)
    inverted: bool  # light modules on a dark background (dark-mode app)
    carrier: str  # "phone" or "paper"
    center: tuple[float, float]  # symbol centre, as fractions of width and height
    psf: str = "gaussian"  # blur shape: "gaussian", "disk" (defocus) or "motion" (a line),
    # each of the same standard deviation along its widest direction


@dataclass(frozen=True)
class SceneTruth:
    """What a decoder should find in a frame."""

    payload: str
    corners: np.ndarray  # (4, 2) float: symbol corners TL, TR, BR, BL in frame pixels
    modules: int  # symbol width in modules (version 3 is 29)
    difficulty: str
    params: SceneParams


@dataclass(frozen=True)
class Entrance:
    """A lit entrance with no code: reflectance (0..1) times illumination (grey levels)."""

    reflectance: np.ndarray  # float32, (height, width)
    illumination: np.ndarray  # float32, (height, width)

    @property
    def size(self) -> tuple[int, int]:
        return self.reflectance.shape[1], self.reflectance.shape[0]


def random_payload(rng: np.random.Generator, length: int = 40) -> str:
    """A ticket-like payload: ``GT1:`` and base32 (QR alphanumeric mode; 44 chars is version 3)."""
    return "GT1:" + "".join(BASE32[i] for i in rng.integers(0, 32, length))


def sample_params(rng: np.random.Generator, difficulty: str) -> SceneParams:
    """Draw one scene's parameters from a difficulty preset."""
    p = PRESETS[difficulty]
    light = float(rng.uniform(*p.light))
    return SceneParams(
        ppm=float(rng.uniform(*p.ppm)),
        roll_deg=float(rng.uniform(-p.roll_max, p.roll_max)),
        tilt_deg=float(rng.uniform(0.0, p.tilt_max)),
        tilt_axis_deg=float(rng.uniform(0.0, 360.0)),
        blur_sigma=float(rng.uniform(*p.blur)),
        noise_sigma=float(rng.uniform(*p.noise)),
        light=light,
        glare=light * float(rng.uniform(0.0, 0.5)),
        ambient=float(rng.uniform(70.0, 170.0)),
        brightness=float(rng.uniform(150.0, 245.0)),
        black=float(rng.uniform(0.04, 0.2)),
        inverted=bool(rng.random() < 0.2),
        carrier="phone" if rng.random() < 0.75 else "paper",
        center=(float(rng.uniform(0.3, 0.7)), float(rng.uniform(0.3, 0.7))),
    )


# ----------------------------------------------------------------------------- entrance

def _value_noise(rng: np.random.Generator, size: tuple[int, int], cell: int) -> np.ndarray:
    """Smooth noise in [-1, 1]: a coarse random grid resized bicubically."""
    w, h = size
    coarse = rng.uniform(-1.0, 1.0, (max(2, h // cell + 2), max(2, w // cell + 2)))
    img = Image.fromarray(coarse.astype(np.float32), mode="F")
    return np.asarray(img.resize((w, h), Image.Resampling.BICUBIC), dtype=np.float32)


def _illumination(rng: np.random.Generator, size: tuple[int, int], ambient: float,
                  light: float) -> np.ndarray:
    w, h = size
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    x, y = x / w - 0.5, y / h - 0.5
    a = rng.uniform(0.0, 2 * math.pi)
    ramp = (x * math.cos(a) + y * math.sin(a)) / 0.71 * 0.5 + 0.5  # 0..1 across the frame
    lamp_x, lamp_y = rng.uniform(-0.4, 0.4), rng.uniform(-0.5, -0.1)
    pool = np.exp(-((x - lamp_x) ** 2 + (y - lamp_y) ** 2) / 0.08)
    illum = (1.0 - light * ramp) * (1.0 - 0.5 * light * (x * x + y * y)) + 0.25 * pool
    return (ambient * illum / illum.mean()).astype(np.float32)


def make_entrance(rng: np.random.Generator, size: tuple[int, int] = (640, 480),
                  ambient: float = 120.0, light: float = 0.2) -> Entrance:
    """An empty entrance: wall with a door frame and signs, tiled floor, uneven light."""
    w, h = size
    refl = np.full((h, w), rng.uniform(0.45, 0.75), np.float32)
    refl += 0.06 * _value_noise(rng, size, 40) + 0.03 * _value_noise(rng, size, 8)
    horizon = int(h * rng.uniform(0.62, 0.8))
    # floor: perspective tiles with grout lines, converging on a vanishing point
    vx = w * rng.uniform(0.3, 0.7)
    ys, xs = np.mgrid[horizon:h, 0:w].astype(np.float32)
    depth = h * 0.6 / (ys - horizon + 4.0)
    fx, fz = (xs - vx) * depth / w * 6.0, depth * 3.0
    tile = (np.floor(fx) + np.floor(fz)) % 2
    grout = (np.abs(fx - np.round(fx)) < 0.04) | (np.abs(fz - np.round(fz)) < 0.04)
    refl[horizon:] = rng.uniform(0.25, 0.5) + 0.05 * tile - 0.12 * grout
    # door frame and a darker corridor beyond it
    x0 = int(w * rng.uniform(0.15, 0.45))
    x1 = min(w - 8, x0 + int(w * rng.uniform(0.25, 0.4)))
    top = int(h * rng.uniform(0.05, 0.2))
    post = max(3, w // 60)
    corridor = np.linspace(0.3, 0.12, horizon - top, dtype=np.float32)[:, None]
    refl[top:horizon, x0:x1] = corridor
    refl[top - post:horizon, x0 - post:x0] = refl[top - post:horizon, x1:x1 + post] = 0.2
    refl[top - post:top, x0 - post:x1 + post] = 0.2
    # signs: plain panels and text-like stripes (edges a decoder has to reject)
    for _ in range(int(rng.integers(1, 4))):
        sw, sh = int(w * rng.uniform(0.05, 0.15)), int(h * rng.uniform(0.04, 0.12))
        sx, sy = int(rng.integers(0, w - sw)), int(rng.integers(0, max(1, horizon - sh)))
        refl[sy:sy + sh, sx:sx + sw] = rng.uniform(0.1, 0.9)
        if rng.random() < 0.6:
            ink = rng.uniform(0.05, 0.2)
            for row in range(sy + 3, sy + sh - 4, 6):
                length = int(sw * rng.uniform(0.4, 0.9))
                refl[row:row + 3, sx + 3:sx + 3 + length - 6] = ink
    refl *= 1.0 + 0.02 * rng.standard_normal((h, w), dtype=np.float32)  # plaster grain
    np.clip(refl, 0.0, 1.0, out=refl)
    return Entrance(refl, _illumination(rng, size, ambient, light))


def _add_person(rng: np.random.Generator, refl: np.ndarray, cx: float, cy: float) -> None:
    """A dark torso and head behind the held code."""
    h, w = refl.shape
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    tone = rng.uniform(0.08, 0.35)
    torso = ((x - cx) / (0.22 * w)) ** 2 + ((y - cy - 0.45 * h) / (0.5 * h)) ** 2 < 1.0
    head = ((x - cx) / (0.07 * w)) ** 2 + ((y - cy + 0.2 * h) / (0.12 * h)) ** 2 < 1.0
    refl[torso] = tone
    refl[head] = tone * 1.6


# ----------------------------------------------------------------------------- carrier

def qr_matrix(payload: str) -> np.ndarray:
    """The symbol's modules (1 dark), no quiet zone, error correction level M."""
    qr = segno.make(payload, error="m", micro=False, boost_error=False)
    return np.array([list(r) for r in qr.matrix_iter(scale=1, border=0)], dtype=np.uint8)


def _rect(a: np.ndarray, r: int, x: float, y: float, w: float, h: float, v: float) -> None:
    """Fill a rectangle given in modules into a card drawn at r pixels per module."""
    a[int(round(y * r)):int(round((y + h) * r)), int(round(x * r)):int(round((x + w) * r))] = v


def _card(matrix: np.ndarray, params: SceneParams, rng: np.random.Generator,
          r: int) -> tuple[np.ndarray, tuple[float, float]]:
    """The carrier as RGB channels (emission, reflectance, coverage) and the symbol origin.

    Emission is in units of the screen's white, reflectance of the illumination; the origin
    is the symbol's top-left corner in modules.
    """
    n = matrix.shape[0]
    total = n + 2 * QUIET
    lo, hi = params.black, 1.0
    light_v, dark_v = (lo, 0.85) if params.inverted else (hi, lo)  # background, modules
    if params.carrier == "phone":
        bezel, sw = 2.0, round(total * 1.2)
        sh = round(sw * 2.05)
        cw, ch = sw + 2 * bezel, sh + 2 * bezel
        qx, qy = bezel + (sw - n) / 2, bezel + round(0.38 * sh) - n / 2
        emit = np.zeros((int(ch * r), int(cw * r)), np.float32)
        refl = np.full_like(emit, 0.05)
        _rect(emit, r, bezel, bezel, sw, sh, light_v)
        _rect(refl, r, bezel, bezel, sw, sh, 0.03)
        _rect(emit, r, bezel, bezel, sw, 0.07 * sh, 0.5)  # the app's title bar
        chrome = emit
    else:
        cw, ch = total + 4.0, round(total * 1.45)
        qx, qy = (cw - n) / 2, 2.0 + QUIET
        refl = np.full((int(ch * r), int(cw * r)), 0.82 * light_v, np.float32)
        emit = np.zeros_like(refl)
        chrome = refl
        light_v, dark_v = 0.82 * light_v, 0.82 * dark_v
    for k in range(3):  # text lines under the code
        length = rng.uniform(0.3, 0.8) * (cw - 8)
        _rect(chrome, r, (cw - length) / 2, qy + n + QUIET + 1.5 + 2.5 * k, length, 1.2, dark_v)
    modules = np.where(matrix > 0, dark_v, light_v).astype(np.float32)
    x0, y0 = int(round(qx * r)), int(round(qy * r))
    chrome[y0:y0 + n * r, x0:x0 + n * r] = np.kron(modules, np.ones((r, r), np.float32))
    if params.carrier == "phone" and params.glare > 0:
        hh, ww = refl.shape
        yy, xx = np.mgrid[0:hh, 0:ww].astype(np.float32)
        a = rng.uniform(0, math.pi)
        d = (xx * math.cos(a) + yy * math.sin(a)) / r - rng.uniform(0, cw)
        refl += params.glare * np.exp(-(d / (0.15 * cw)) ** 2)
    cover = np.ones_like(emit)
    if params.carrier == "phone":  # rounded corners
        rad = int(3 * r)
        yy, xx = np.mgrid[0:rad, 0:rad]
        outside = (rad - xx) ** 2 + (rad - yy) ** 2 > rad * rad
        for sl in ((slice(0, rad), slice(0, rad)), (slice(0, rad), slice(-rad, None)),
                   (slice(-rad, None), slice(0, rad)), (slice(-rad, None), slice(-rad, None))):
            block = cover[sl]
            block[outside[:: 1 if sl[0].start == 0 else -1, :: 1 if sl[1].start == 0 else -1]] = 0
    rgb = np.stack([emit, np.clip(refl, 0, 1), cover], axis=-1)
    return (rgb * 255.0 + 0.5).astype(np.uint8), (qx, qy)


def _homography(src: np.ndarray, dst: np.ndarray) -> tuple[float, ...]:
    """Coefficients (a..h) mapping src points to dst points, as Pillow's PERSPECTIVE wants."""
    rows, rhs = [], []
    for (x, y), (u, v) in zip(src, dst):
        rows.append([x, y, 1, 0, 0, 0, -x * u, -y * u])
        rows.append([0, 0, 0, x, y, 1, -x * v, -y * v])
        rhs += [u, v]
    return tuple(np.linalg.solve(np.array(rows, float), np.array(rhs, float)))


def _project(points: np.ndarray, params: SceneParams, n: int) -> np.ndarray:
    """Project carrier points (modules, symbol centre at 0) through a tilted, rolled plane."""
    t, a, g = (math.radians(v) for v in (params.tilt_deg, params.tilt_axis_deg, params.roll_deg))
    ax = np.array([math.cos(a), math.sin(a), 0.0])  # tilt axis in the carrier plane
    k = np.array([[0, -ax[2], ax[1]], [ax[2], 0, -ax[0]], [-ax[1], ax[0], 0]])
    tilt = np.eye(3) + math.sin(t) * k + (1 - math.cos(t)) * (k @ k)  # Rodrigues
    roll = np.array([[math.cos(g), -math.sin(g), 0], [math.sin(g), math.cos(g), 0], [0, 0, 1]])
    p3 = np.c_[points, np.zeros(len(points))] @ (roll @ tilt).T + [0.0, 0.0, DISTANCE * n]
    return p3[:, :2] / p3[:, 2:3]


def _draw_carrier(rng: np.random.Generator, lum: np.ndarray, illum: np.ndarray,
                  params: SceneParams, matrix: np.ndarray) -> np.ndarray:
    """Composite the carrier into ``lum`` in place; return the symbol corners in pixels."""
    h, w = lum.shape
    n = matrix.shape[0]
    ss = 4 if params.ppm < 4.5 else 2  # supersampling of the projection
    r = max(4, math.ceil(params.ppm * ss))  # card pixels per module: never upsampled much
    card, (qx, qy) = _card(matrix, params, rng, r)
    ch, cw = card.shape[0] / r, card.shape[1] / r
    centre = np.array([qx + n / 2, qy + n / 2])
    sym = np.array([[qx, qy], [qx + n, qy], [qx + n, qy + n], [qx, qy + n]]) - centre
    quiet = sym * (n + 2 * QUIET) / n
    edge = np.array([[0, 0], [cw, 0], [cw, ch], [0, ch]]) - centre
    proj = _project(np.vstack([sym, quiet, edge]), params, n)
    s, q, e = proj[:4], proj[4:8], proj[8:]
    x, y = s[:, 0], s[:, 1]
    area = 0.5 * abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1)))
    scale = params.ppm * n / math.sqrt(area)
    target = np.array([params.center[0] * w, params.center[1] * h])
    offset = target - scale * s.mean(axis=0)
    q = q * scale + offset  # keep the quiet zone inside the frame
    offset += np.maximum(0, 2 - q.min(axis=0)) - np.maximum(0, q.max(axis=0) - [w - 2, h - 2])
    s, e = s * scale + offset, e * scale + offset
    bx0, by0 = np.maximum(np.floor(e.min(axis=0)).astype(int), 0)
    bx1, by1 = np.minimum(np.ceil(e.max(axis=0)).astype(int), [w, h])
    region = (e - [bx0, by0]) * ss
    coeffs = _homography(region, np.array([[0, 0], [cw, 0], [cw, ch], [0, ch]]) * r)
    img = Image.fromarray(card, "RGB").transform(
        ((bx1 - bx0) * ss, (by1 - by0) * ss), Image.Transform.PERSPECTIVE, coeffs,
        resample=Image.Resampling.BILINEAR)
    ch3 = np.asarray(img.reduce(ss), np.float32) / 255.0
    sl = (slice(by0, by1), slice(bx0, bx1))
    lum[sl] = (lum[sl] * (1.0 - ch3[..., 2]) + ch3[..., 1] * illum[sl]
               + ch3[..., 0] * params.brightness)
    return s.astype(np.float32)


# ----------------------------------------------------------------------------- camera

def _disk_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Defocus: a uniform disk whose per-axis sigma is ``sigma`` (radius 2 sigma)."""
    radius, n, sub = 2.0 * sigma, math.ceil(2.0 * sigma), 8
    t = (np.arange(-n * sub, (n + 1) * sub) + 0.5) / sub - 0.5  # 8x8 samples per tap
    inside = (t[:, None] ** 2 + t[None, :] ** 2 <= radius * radius).astype(np.float32)
    kernel = inside.reshape(2 * n + 1, sub, 2 * n + 1, sub).sum(axis=(1, 3))
    kernel /= kernel.sum()
    padded = np.pad(img.astype(np.float32), n, mode="reflect")
    out = np.zeros(img.shape, np.float32)
    h, w = img.shape
    for dy, dx in zip(*np.nonzero(kernel)):  # a few dozen shifted adds: exact and simple
        out += kernel[dy, dx] * padded[dy:dy + h, dx:dx + w]
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def _motion_blur(img: np.ndarray, sigma: float, angle: float) -> np.ndarray:
    """A hand moving during the exposure: a line of length sigma*sqrt(12) (a uniform
    distribution of that standard deviation) at ``angle`` radians, plus a little lens blur."""
    length = sigma * math.sqrt(12.0)
    n = math.ceil(length / 2) + 1
    sub = 16
    t = np.linspace(-length / 2, length / 2, sub * max(2, math.ceil(length)))
    kernel = np.zeros((2 * n + 1, 2 * n + 1), np.float32)
    np.add.at(kernel, (np.round(t * math.sin(angle)).astype(int) + n,
                       np.round(t * math.cos(angle)).astype(int) + n), 1.0)
    kernel /= kernel.sum()
    padded = np.pad(img.astype(np.float32), n, mode="reflect")
    out = np.zeros(img.shape, np.float32)
    h, w = img.shape
    for dy, dx in zip(*np.nonzero(kernel)):
        out += kernel[dy, dx] * padded[dy:dy + h, dx:dx + w]
    out8 = np.clip(out + 0.5, 0, 255).astype(np.uint8)
    return np.asarray(Image.fromarray(out8).filter(ImageFilter.GaussianBlur(0.4)))


def _expose(rng: np.random.Generator, lum: np.ndarray, blur: float, noise: float,
            psf: str = "gaussian") -> np.ndarray:
    """Optics then sensor: blur, Gaussian noise, rounding to uint8."""
    img = np.clip(lum, 0, 255).astype(np.uint8)
    if blur > 0.05 and psf == "disk":
        img = _disk_blur(img, blur)
    elif blur > 0.05 and psf == "motion":
        img = _motion_blur(img, blur, float(rng.uniform(0, math.pi)))
    elif blur > 0.05:
        img = np.asarray(Image.fromarray(img).filter(ImageFilter.GaussianBlur(blur)))
    if noise <= 0:
        return np.ascontiguousarray(img)
    out = img.astype(np.float32) + noise * rng.standard_normal(img.shape, dtype=np.float32)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def render_scene(rng: np.random.Generator, params: SceneParams, size: tuple[int, int],
                 payload: str, entrance: Entrance | None = None,
                 person: bool = True) -> tuple[np.ndarray, SceneTruth]:
    """One code frame from explicit parameters; ``entrance`` defaults to a fresh one."""
    if entrance is None:
        entrance = make_entrance(rng, size, params.ambient, params.light)
    w, h = entrance.size
    refl = entrance.reflectance.copy()
    if person:
        _add_person(rng, refl, params.center[0] * w, params.center[1] * h)
    lum = refl * entrance.illumination
    matrix = qr_matrix(payload)
    corners = _draw_carrier(rng, lum, entrance.illumination, params, matrix)
    frame = _expose(rng, lum, params.blur_sigma, params.noise_sigma, params.psf)
    return frame, SceneTruth(payload, corners, matrix.shape[0], "", params)


def make_scene(rng: np.random.Generator, difficulty: str, size: tuple[int, int] = (640, 480),
               payload: str | None = None,
               entrance: Entrance | None = None) -> tuple[np.ndarray, SceneTruth]:
    """One code frame of a difficulty ("easy", "medium", "hard"); the payload defaults to a
    random ticket. Pass ``entrance`` to put the code into a known empty scene (its lighting
    then wins over the drawn ``ambient`` and ``light``)."""
    params = sample_params(rng, difficulty)
    if payload is None:
        payload = random_payload(rng)
    frame, truth = render_scene(rng, params, size, payload, entrance)
    return frame, replace(truth, difficulty=difficulty)


def empty_scene(rng: np.random.Generator, size: tuple[int, int] = (640, 480),
                noise_sigma: float = 2.0, entrance: Entrance | None = None,
                person: bool = False, blur: float = 0.4) -> np.ndarray:
    """One frame of an entrance with no code; ``person`` puts someone in it (busy, no code)."""
    if entrance is None:
        entrance = make_entrance(rng, size, float(rng.uniform(70, 170)), float(rng.uniform(0, 0.5)))
    refl = entrance.reflectance
    if person:
        w, h = entrance.size
        refl = refl.copy()
        _add_person(rng, refl, w * rng.uniform(0.2, 0.8), h * rng.uniform(0.3, 0.7))
    return _expose(rng, refl * entrance.illumination, blur, noise_sigma)


def empty_sequence(rng: np.random.Generator, size: tuple[int, int] = (640, 480), n: int = 30,
                   noise_sigma: float = 2.0, static: bool = False,
                   entrance: Entrance | None = None, blur: float = 0.4) -> list[np.ndarray]:
    """``n`` consecutive frames of one empty entrance.

    ``static`` repeats one frame exactly (a perfectly still picture); otherwise each frame
    gets fresh sensor noise and a 0.5% exposure flicker, as a real sensor gives.
    """
    if entrance is None:
        entrance = make_entrance(rng, size, float(rng.uniform(70, 170)), float(rng.uniform(0, 0.5)))
    if static:
        frame = empty_scene(rng, size, noise_sigma, entrance, blur=blur)
        return [frame] * n
    lum = entrance.reflectance * entrance.illumination
    return [_expose(rng, lum * (1 + 0.005 * rng.standard_normal()), blur, noise_sigma)
            for _ in range(n)]
