"""Camera-photo simulation: what a phone sees of a physical card.

Turns a clean scan into (a) a *rectified crop* — the card as a detector + perspective correction
would hand it to the embedder, small corner errors and background slivers included — or (b) a
*scene* with one or several cards and their four corner points (for the detector).

The physical model, in order: card surface (holo shimmer) → rounded die-cut corners → 3-D pose
(pitch/yaw/roll, focal length, distance) → background (wood, cloth, playmat, table, clutter) with a
soft shadow → sleeve / top-loader → fingers → illumination field and white balance → specular glare
and sleeve sheen (added in float, clipped once) → defocus or motion blur → sensor noise (shot +
read) → ISP sharpening → JPEG → (crops) rectification with corner error.

Rules that protect identity: **no horizontal flips, no large hue shifts**. White balance is a
bounded per-channel gain (a colour cast, not a hue rotation) and holo shimmer is a low-amplitude
additive pattern, so the printed text and colours stay what identifies the card.

Every random draw comes from the ``numpy.random.Generator`` passed in: a seed reproduces a view.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict

from cardid.preprocess import CARD_ASPECT

Range = tuple[float, float]


class PhotoSimConfig(BaseModel):
    """Strengths and probabilities of every camera effect (serialised beside each dataset)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    crop_width: int = 224
    #: card size in the photo relative to the crop width (<1: far away, upsampled and soft)
    scale: Range = (0.6, 1.5)
    max_tilt_deg: float = 32.0
    max_roll_deg: float = 25.0
    focal: Range = (0.7, 1.8)  # focal length / canvas diagonal (wide-angle → strong perspective)
    corner_error: float = 0.012  # σ of each rectification corner, fraction of card width
    p_finger: float = 0.25
    p_sleeve: float = 0.3
    p_toploader: float = 0.1
    p_holo: float = 0.25
    holo_strength: Range = (0.04, 0.14)
    p_glare: float = 0.45
    glare_strength: Range = (0.2, 1.0)
    exposure: Range = (0.7, 1.2)
    illumination: float = 0.35  # max relative brightness change across the frame
    color_cast: float = 0.10  # max per-channel white-balance gain deviation
    p_defocus: float = 0.35
    defocus_sigma: Range = (0.4, 1.1)
    p_motion_blur: float = 0.15
    motion_len: Range = (0.01, 0.045)  # blur length, fraction of the image width
    noise: Range = (0.002, 0.014)  # read-noise σ; shot noise scales with it (phones denoise)
    p_sharpen: float = 0.7  # phone ISPs sharpen (unsharp mask) after denoising
    sharpen_amount: Range = (0.5, 3.0)
    p_jpeg: float = 0.85
    jpeg_quality: Range = (35.0, 95.0)

    @property
    def crop_height(self) -> int:
        return round(self.crop_width / CARD_ASPECT)


PRESETS = {
    "default": PhotoSimConfig(),
    "light": PhotoSimConfig(
        max_tilt_deg=15,
        max_roll_deg=8,
        p_finger=0.1,
        p_glare=0.3,
        glare_strength=(0.2, 0.6),
        p_defocus=0.3,
        defocus_sigma=(0.3, 0.8),
        p_motion_blur=0.05,
        noise=(0.001, 0.008),
        jpeg_quality=(60, 95),
        corner_error=0.006,
    ),
    "heavy": PhotoSimConfig(
        scale=(0.35, 1.4),
        max_tilt_deg=40,
        p_finger=0.45,
        p_glare=0.75,
        glare_strength=(0.5, 1.8),
        p_motion_blur=0.35,
        motion_len=(0.02, 0.08),
        p_defocus=0.6,
        defocus_sigma=(0.5, 2.0),
        noise=(0.004, 0.03),
        jpeg_quality=(25, 85),
        corner_error=0.02,
    ),
}


def photo_preset(name: str) -> PhotoSimConfig:
    if name not in PRESETS:
        from cardid.errors import CardIDError

        raise CardIDError(f"unknown photo preset {name!r} (known: {', '.join(PRESETS)})")
    return PRESETS[name]


# ----------------------------------------------------------------------------- geometry
def card_corners(w: float, h: float) -> np.ndarray:
    """Corners of a w×h card in its own frame, ordered TL, TR, BR, BL (the order used everywhere)."""
    return np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)


def project_card(
    rng: np.random.Generator,
    card_w: float,
    card_h: float,
    center: tuple[float, float],
    canvas_diag: float,
    cfg: PhotoSimConfig,
    roll_deg: float | None = None,
) -> np.ndarray:
    """Image corners (4×2, TL TR BR BL) of a card under a random 3-D pose (pinhole camera)."""
    pitch, yaw = np.radians(rng.uniform(-cfg.max_tilt_deg, cfg.max_tilt_deg, 2))
    roll = math.radians(rng.uniform(-cfg.max_roll_deg, cfg.max_roll_deg) if roll_deg is None else roll_deg)
    f = canvas_diag * rng.uniform(*cfg.focal)
    return project_plane(card_corners(card_w, card_h) - [card_w / 2, card_h / 2], pitch, yaw, roll, f, center)


def project_plane(
    pts: np.ndarray, pitch: float, yaw: float, roll: float, f: float, center: tuple[float, float]
) -> np.ndarray:
    """Project points of a plane (z=0, centred) rotated by pitch/yaw/roll, seen from distance f."""
    cx, sx = math.cos(pitch), math.sin(pitch)
    cy, sy = math.cos(yaw), math.sin(yaw)
    cz, sz = math.cos(roll), math.sin(roll)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    p3 = np.c_[pts, np.zeros(len(pts))] @ (ry @ rx @ rz).T
    z = p3[:, 2] + f
    return (p3[:, :2] * (f / z)[:, None] + center).astype(np.float32)


def rounded_card_mask(h: int, w: int, radius_frac: float = 0.048) -> np.ndarray:
    """uint8 mask of a die-cut card with rounded corners (3 mm radius on 63 mm width)."""
    m = np.zeros((h, w), np.uint8)
    r = max(1, round(radius_frac * w))
    cv2.rectangle(m, (r, 0), (w - 1 - r, h - 1), 255, -1)
    cv2.rectangle(m, (0, r), (w - 1, h - 1 - r), 255, -1)
    for c in ((r, r), (w - 1 - r, r), (r, h - 1 - r), (w - 1 - r, h - 1 - r)):
        cv2.circle(m, c, r, 255, -1, cv2.LINE_AA)
    return m


# ----------------------------------------------------------------------------- textures
_BANK_SIZE = 800
_NOISE_BANK: np.ndarray | None = None


def _noise(rng: np.random.Generator, h: int, w: int, c: int = 3) -> np.ndarray:
    """Sensor-like noise (h, w, c) with σ ≈ 0.85: luminance-dominated plus a little chroma.

    A window at a random offset of a fixed 800×800 bank (fresh draws when larger): drawing ~10⁶
    normals per photo dominated the simulation's cost, and an offset window is as random to a
    network and keeps a seed reproducible.
    """
    global _NOISE_BANK
    if h > _BANK_SIZE or w > _BANK_SIZE:
        lum = rng.standard_normal((h, w, 1), dtype=np.float32)
        return (0.8 * lum + 0.3 * rng.standard_normal((h, w, 3), dtype=np.float32))[..., :c]
    if _NOISE_BANK is None:
        g = np.random.default_rng(20261126)
        lum = g.standard_normal((_BANK_SIZE, _BANK_SIZE, 1), dtype=np.float32)
        _NOISE_BANK = 0.8 * lum + 0.3 * g.standard_normal((_BANK_SIZE, _BANK_SIZE, 3), dtype=np.float32)
    y, x = int(rng.integers(0, _BANK_SIZE - h + 1)), int(rng.integers(0, _BANK_SIZE - w + 1))
    return _NOISE_BANK[y : y + h, x : x + w, :c]


def _lowfreq(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    g = rng.random((cells, max(2, round(cells * w / max(h, 1)))), dtype=np.float32)
    return cv2.resize(g, (w, h), interpolation=cv2.INTER_CUBIC)


def _to_u8(x: np.ndarray) -> np.ndarray:
    """float in [0, 1] (any range) → uint8, rounded and saturated (negative values → 0)."""
    np.maximum(x, 0, out=x)
    return cv2.convertScaleAbs(x, alpha=255)


def background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """An RGB uint8 background: wood, cloth, playmat, plain table or clutter.

    Rendered at half resolution and upsampled: behind a close-up card the surface is soft anyway.
    """
    H, W = h, w
    h, w = max(2, (h + 1) // 2), max(2, (w + 1) // 2)
    kind = rng.choice(["wood", "cloth", "playmat", "table", "clutter"], p=[0.25, 0.2, 0.2, 0.2, 0.15])
    base = rng.uniform(0.05, 0.85, 3).astype(np.float32)
    if kind == "wood":
        base = np.array([rng.uniform(0.35, 0.75), rng.uniform(0.22, 0.5), rng.uniform(0.1, 0.3)], np.float32)
        ang = rng.uniform(0, math.pi)
        ramp = np.arange(w, dtype=np.float32)[None, :] * math.cos(ang) + np.arange(h, dtype=np.float32)[
            :, None
        ] * math.sin(ang)
        stripes = np.sin((ramp + _lowfreq(rng, h, w, 4) * rng.uniform(5, 20)) * rng.uniform(0.16, 0.6))
        tex = 1 + 0.12 * stripes + 0.1 * (_lowfreq(rng, h, w, 12) - 0.5)
    elif kind == "cloth":
        tex = 1 + 0.1 * _noise(rng, h, w, 1)[..., 0] + 0.2 * (_lowfreq(rng, h, w, 6) - 0.5)
    elif kind == "table":
        tex = 1 + 0.15 * (_lowfreq(rng, h, w, 2) - 0.5) + 0.015 * _noise(rng, h, w, 1)[..., 0]
    if kind == "playmat":
        img = cv2.merge([_lowfreq(rng, h, w, int(rng.integers(2, 7))) for _ in range(3)])
        grey = img.mean(-1, keepdims=True)  # printed playmats: colourful but not neon
        img = (grey + (img - grey) * rng.uniform(0.3, 0.8)) * rng.uniform(0.4, 1.0)
    elif kind == "clutter":  # other rectangles (papers, boxes, other cards) on a plain surface
        img = np.empty((h, w, 3), np.float32)
        img[:] = base
        for _ in range(int(rng.integers(2, 7))):
            box = cv2.boxPoints(
                (
                    (rng.uniform(0, w), rng.uniform(0, h)),
                    (rng.uniform(0.1, 0.6) * w, rng.uniform(0.1, 0.6) * h),
                    rng.uniform(0, 180),
                )
            )
            cv2.fillPoly(
                img, [box.astype(np.int32)], tuple(float(v) for v in rng.uniform(0, 1, 3)), cv2.LINE_AA
            )
    else:
        img = cv2.merge([tex * b for b in base])
    return cv2.resize(_to_u8(img), (W, H), interpolation=cv2.INTER_LINEAR)


SKIN = (
    np.array(
        [[0.96, 0.80, 0.69], [0.88, 0.67, 0.53], [0.76, 0.55, 0.40], [0.55, 0.37, 0.26], [0.36, 0.24, 0.17]],
        np.float32,
    )
    * 255
)


def _pt(p) -> tuple[int, int]:
    return round(float(p[0])), round(float(p[1]))


def draw_fingers(rng: np.random.Generator, img: np.ndarray, corners: np.ndarray, n: int = 1) -> np.ndarray:
    """Draw fingertips (shaded capsules with a nail) entering over the card's edges, in place.

    Returns the fingers' coverage (float32 H×W in [0, 1])."""
    h, w = img.shape[:2]
    cover = np.zeros((h, w), np.float32)
    cw = float(np.linalg.norm(corners[1] - corners[0]))
    tone = SKIN[rng.integers(0, len(SKIN))] * np.float32(rng.uniform(0.9, 1.1))
    for _ in range(n):
        e = int(rng.integers(0, 4))
        a, b = corners[e], corners[(e + 1) % 4]
        p = a + (b - a) * rng.uniform(0.15, 0.85)
        inward = corners.mean(0) - p
        inward /= np.linalg.norm(inward) + 1e-6
        tip = p + inward * cw * rng.uniform(0.05, 0.22)
        root = p - inward * cw * rng.uniform(0.5, 1.0)
        thick = max(3, int(cw * rng.uniform(0.14, 0.22)))
        # work in the finger's bounding box only
        lo = np.maximum(np.floor(np.minimum(root, tip) - thick), 0).astype(int)
        hi = np.minimum(np.ceil(np.maximum(root, tip) + thick), [w, h]).astype(int)
        if np.any(hi <= lo):
            continue
        (x0, y0), (x1, y1) = lo, hi
        mask = np.zeros((y1 - y0, x1 - x0), np.float32)
        cv2.line(mask, _pt(root - lo), _pt(tip - lo), 1.0, thick, cv2.LINE_AA)
        shade = cv2.GaussianBlur(mask, (0, 0), thick / 4) * 0.35 + 0.65
        mask = cv2.GaussianBlur(mask, (0, 0), 0.8)
        finger = tone * shade[..., None]
        nail = np.zeros_like(mask)
        nc = tip - lo - inward * thick * 0.35
        cv2.ellipse(
            nail,
            (
                (float(nc[0]), float(nc[1])),
                (thick * 0.5, thick * 0.7),
                math.degrees(math.atan2(inward[1], inward[0])) + 90,
            ),
            1.0,
            -1,
            cv2.LINE_AA,
        )
        finger += nail[..., None] * 30
        roi = img[y0:y1, x0:x1]
        m3 = mask[..., None]
        roi[:] = np.clip(roi * (1 - m3) + finger * m3 + 0.5, 0, 255).astype(np.uint8)
        np.maximum(cover[y0:y1, x0:x1], mask, out=cover[y0:y1, x0:x1])
    return cover


# ----------------------------------------------------------------------------- card surface
def holo_shimmer(rng: np.random.Generator, card: np.ndarray, strength: float) -> np.ndarray:
    """Low-amplitude rainbow interference on the art window (or the whole face: reverse holo)."""
    h, w = card.shape[:2]
    y0, y1 = (round(0.1 * h), round(0.52 * h)) if rng.random() < 0.7 else (0, h)
    ang, freq = rng.uniform(0, math.pi), rng.uniform(0.02, 0.08)
    phase = (
        np.arange(w, dtype=np.float32)[None, :] * (math.cos(ang) * freq)
        + np.arange(y0, y1, dtype=np.float32)[:, None] * (math.sin(ang) * freq)
        + rng.uniform(0, 6)
    )
    mod = _lowfreq(rng, y1 - y0, w, 3) * (strength * 255)
    pattern = cv2.merge([np.sin(phase + k * 2.09) * mod for k in range(3)])
    out = card.copy()
    out[y0:y1] = np.clip(card[y0:y1] + pattern + 0.5, 0, 255).astype(np.uint8)
    return out


# ----------------------------------------------------------------------------- camera
@functools.lru_cache(maxsize=64)
def _shot_lut(read_milli: int) -> np.ndarray:
    """Per-intensity noise σ in uint8 units: read noise + shot noise ∝ sqrt(signal)."""
    read = read_milli / 1000.0
    return ((read + 2 * read * np.sqrt(np.arange(256) / 255.0)) * 255).astype(np.float32)


def motion_blur(img: np.ndarray, length: int, angle: float) -> np.ndarray:
    """Average of ``length`` copies shifted along ``angle`` (a line kernel, ~5× faster than filter2D)."""
    if length < 2:
        return img
    h, w = img.shape[:2]
    t = np.arange(length) - (length - 1) / 2
    dx, dy = np.rint(t * math.cos(angle)).astype(int), np.rint(t * math.sin(angle)).astype(int)
    p = int(max(np.abs(dx).max(), np.abs(dy).max()))
    padded = cv2.copyMakeBorder(img, p, p, p, p, cv2.BORDER_REPLICATE)
    acc = np.zeros(img.shape, np.uint16)
    for x, y in zip(dx, dy, strict=True):
        acc += padded[p + y : p + y + h, p + x : p + x + w]
    return ((acc + length // 2) // length).astype(np.uint8)


@dataclass
class _Canvas:
    """The physical scene in front of the camera, before any camera effect.

    ``img`` is full resolution; the smooth maps live at 1/:attr:`Q` resolution: ``gloss`` marks
    glossy surfaces (cards, sleeves) where glare can appear, ``shade`` is multiplicative shadowing.
    """

    img: np.ndarray
    gloss: np.ndarray
    shade: np.ndarray
    labels: np.ndarray | None = None
    Q = 4

    @classmethod
    def new(cls, img: np.ndarray, labels: bool = False) -> _Canvas:
        h, w = img.shape[:2]
        q = (max(2, -(-h // cls.Q)), max(2, -(-w // cls.Q)))
        return cls(
            img,
            np.zeros(q, np.float32),
            np.ones(q, np.float32),
            np.full((h, w), -1, np.int16) if labels else None,
        )

    @property
    def q_size(self) -> tuple[int, int]:
        return self.gloss.shape[1], self.gloss.shape[0]  # (w, h) for OpenCV


def camera_effects(
    rng: np.random.Generator, canvas: _Canvas, cfg: PhotoSimConfig, noise_gain: float = 1.0
) -> np.ndarray:
    """Light, glare, blur, noise, JPEG on the canvas; returns the photo as RGB uint8.

    Light and glare saturate at white (never wrap around): no uint8 overflow.
    Smooth fields (illumination, shadows, glare) are computed at low resolution and upsampled.
    """
    img = canvas.img
    h, w = img.shape[:2]
    lh, lw = canvas.gloss.shape
    # illumination field (gradient + low-frequency variation) × exposure × white balance
    gx, gy = rng.uniform(-1, 1, 2) * cfg.illumination
    field = (
        1
        + np.linspace(-0.5, 0.5, lw, dtype=np.float32)[None, :] * gx
        + np.linspace(-0.5, 0.5, lh, dtype=np.float32)[:, None] * gy
        + (_lowfreq(rng, lh, lw, 3) - 0.5) * cfg.illumination * 0.6
    ) * rng.uniform(*cfg.exposure)
    field *= canvas.shade
    # white balance: a bounded per-channel gain along a warm↔cool axis plus a small tint (never a hue rotation)
    t = rng.uniform(-1, 1) * cfg.color_cast
    gains = np.array([1 + t, 1 + rng.uniform(-0.3, 0.3) * cfg.color_cast, 1 - t], np.float32)
    # Saturating uint8 arithmetic: min(255, min(255, a·f) + g) == min(255, a·f + g) for a, f, g ≥ 0,
    # so this is exactly "compute light in float, clip once" without a float copy of the photo.
    out = cv2.multiply(img, cv2.resize(field[..., None] * gains, (w, h)), dtype=cv2.CV_8U)
    if rng.random() < cfg.p_glare:
        glare = np.zeros((lh, lw), np.float32)
        for _ in range(int(rng.integers(1, 3))):
            c = (float(rng.uniform(0.15, 0.85) * lw), float(rng.uniform(0.15, 0.85) * lh))
            ax = (float(rng.uniform(0.1, 0.6) * lw), float(rng.uniform(0.06, 0.3) * lh))
            cv2.ellipse(
                glare, (c, ax, float(rng.uniform(0, 180))), float(rng.uniform(0.5, 1.0)), -1, cv2.LINE_AA
            )
        glare = cv2.GaussianBlur(glare, (0, 0), max(0.6, 0.08 * min(lh, lw)))
        glare *= canvas.gloss * np.float32(rng.uniform(*cfg.glare_strength) * 255)
        glare = cv2.convertScaleAbs(cv2.resize(glare, (w, h)))  # ≥ 0; saturates at 255
        out = cv2.add(out, cv2.cvtColor(glare, cv2.COLOR_GRAY2RGB))
    # optics: defocus or motion blur
    if rng.random() < cfg.p_defocus:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(*cfg.defocus_sigma))
    if rng.random() < cfg.p_motion_blur:
        out = motion_blur(out, round(rng.uniform(*cfg.motion_len) * w), rng.uniform(0, math.pi))
    # sensor noise, σ per pixel from its intensity (shot + read), saturating add
    sd = cv2.LUT(out, _shot_lut(round(rng.uniform(*cfg.noise) * noise_gain * 1000)))
    cv2.multiply(sd, _noise(rng, h, w), dst=sd)
    out = cv2.add(out, sd, dtype=cv2.CV_8U)
    if rng.random() < cfg.p_sharpen:  # the phone's ISP: unsharp mask, saturating
        amount = rng.uniform(*cfg.sharpen_amount)
        out = cv2.addWeighted(out, 1 + amount, cv2.GaussianBlur(out, (0, 0), 1.0), -amount, 0)
    if rng.random() < cfg.p_jpeg:
        q = int(rng.uniform(*cfg.jpeg_quality))
        _ok, buf = cv2.imencode(".jpg", cv2.cvtColor(out, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, q])
        out = cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    return out


def _sleeve(rng, canvas: _Canvas, corners: np.ndarray, cfg: PhotoSimConfig) -> None:
    """Penny sleeve / top-loader: haze over the card, a slightly larger plastic edge, more gloss."""
    img = canvas.img
    h, w = img.shape[:2]
    center = corners.mean(0)
    grow = 1.03 if rng.random() > cfg.p_toploader / max(cfg.p_sleeve, 1e-6) else 1.12
    outer = (corners - center) * grow + center
    m = np.zeros((h, w), np.float32)
    cv2.fillPoly(m, [outer.astype(np.int32)], 1.0, cv2.LINE_AA)
    m *= rng.uniform(0.02, 0.07)
    img[:] = cv2.blendLinear(img, np.full_like(img, 255), 1 - m, m)
    cv2.polylines(img, [outer.astype(np.int32)], True, (217, 217, 217), max(1, round(w * 0.004)), cv2.LINE_AA)
    cv2.fillPoly(canvas.gloss, [(outer / canvas.Q).astype(np.int32)], 1.0, cv2.LINE_AA)


@dataclass
class SceneCard:
    """One card in a scene: which scan, its four corners (TL TR BR BL of the card), visibility."""

    index: int
    corners: np.ndarray
    visible: float


@dataclass
class Scene:
    image: np.ndarray  # RGB uint8
    cards: list[SceneCard]


@functools.lru_cache(maxsize=256)
def _alpha(h: int, w: int) -> np.ndarray:
    return rounded_card_mask(h, w)


def prepare_scan(scan: np.ndarray, cfg: PhotoSimConfig = PRESETS["default"]) -> np.ndarray:
    """Resize a scan once to the largest card size a crop renders (callers cache the result).

    That size is exactly ``crop_height × crop_width`` (card aspect), so a full-size view needs no
    further resize. Smaller scans are kept as they are (they are upsampled per view).
    """
    if scan.shape[0] <= cfg.crop_height:
        return scan
    interp = cv2.INTER_AREA
    return cv2.resize(scan, (cfg.crop_width, cfg.crop_height), interpolation=interp)


def _card_layer(rng, scan: np.ndarray, cw: int, ch: int, cfg: PhotoSimConfig) -> np.ndarray:
    """The scan resized to its on-screen size (uint8 RGB), with holo shimmer when drawn."""
    if (ch, cw) == scan.shape[:2]:
        card = scan
    else:
        interp = cv2.INTER_AREA if cw < scan.shape[1] else cv2.INTER_LINEAR
        card = cv2.resize(scan, (cw, ch), interpolation=interp)
    if rng.random() < cfg.p_holo:
        card = holo_shimmer(rng, card, rng.uniform(*cfg.holo_strength))
    return card


def _composite(canvas: _Canvas, idx: int, card: np.ndarray, corners: np.ndarray, shadow: bool = True) -> None:
    """Warp a card (rounded die-cut corners, soft drop shadow) onto the canvas in place."""
    img = canvas.img
    h, w = img.shape[:2]
    ch, cw = card.shape[:2]
    alpha = _alpha(ch, cw)
    H = cv2.getPerspectiveTransform(card_corners(cw, ch), corners)
    warped = cv2.warpPerspective(card, H, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    a = cv2.warpPerspective(alpha, H, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    a = a.astype(np.float32) * np.float32(1 / 255)
    # the same warp at the smooth maps' resolution: gloss, and a shifted blurred copy as shadow
    Hq = np.diag([1 / canvas.Q, 1 / canvas.Q, 1.0]) @ H
    aq = cv2.warpPerspective(alpha, Hq, canvas.q_size, flags=cv2.INTER_AREA).astype(np.float32) * (1 / 255)
    if shadow:
        off = np.float32([[1, 0, 0.02 * cw / canvas.Q], [0, 1, 0.03 * cw / canvas.Q]])
        sh = cv2.GaussianBlur(cv2.warpAffine(aq, off, canvas.q_size), (0, 0), max(0.5, 0.03 * cw / canvas.Q))
        canvas.shade *= (1 - 0.45 * sh) * (1 - aq) + aq  # the card itself is not in its own shadow
    img[:] = cv2.blendLinear(warped, img, a, 1 - a)
    np.maximum(canvas.gloss, aq * 0.8, out=canvas.gloss)
    if canvas.labels is not None:
        canvas.labels[a > 0.5] = idx


def render_crop(
    scan: np.ndarray, rng: np.random.Generator, cfg: PhotoSimConfig = PRESETS["default"]
) -> np.ndarray:
    """A rectified camera crop of ``scan`` (RGB uint8) at ``cfg.crop_height × cfg.crop_width``."""
    ow, oh = cfg.crop_width, cfg.crop_height
    s = math.exp(rng.uniform(*np.log(cfg.scale)))
    # A card larger than the crop is shot at high resolution and downsampled by the rectifier,
    # which averages sensor noise: render at crop size with the noise reduced by the same factor.
    noise_gain = 1 / max(1.0, s)
    s = min(s, 1.0)
    cw, ch = max(16, round(ow * s)), max(22, round(oh * s))
    W, H = round(cw * 1.24), round(ch * 1.18)
    corners = project_card(rng, cw, ch, (W / 2, H / 2), math.hypot(W, H), cfg)
    # keep the whole card in frame: shrink around the centre if the pose pushed a corner out
    lo, hi = corners.min(0), corners.max(0)
    fit = min(1.0, (W * 0.96) / (hi[0] - lo[0]), (H * 0.96) / (hi[1] - lo[1]))
    corners = ((corners - (lo + hi) / 2) * fit + [W / 2, H / 2]).astype(np.float32)
    canvas = _Canvas.new(background(rng, H, W))
    _composite(canvas, 0, _card_layer(rng, scan, cw, ch, cfg), corners)
    if rng.random() < cfg.p_sleeve:
        _sleeve(rng, canvas, corners, cfg)
    if rng.random() < cfg.p_finger:
        draw_fingers(rng, canvas.img, corners, n=int(rng.integers(1, 3)))
    photo = camera_effects(rng, canvas, cfg, noise_gain)
    # rectification as a detector would do it: estimated corners = true corners + error
    est = corners + rng.normal(0, cfg.corner_error * cw, (4, 2)).astype(np.float32)
    M = cv2.getPerspectiveTransform(est, card_corners(ow, oh))
    return cv2.warpPerspective(photo, M, (ow, oh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def render_scene(
    scans: list[np.ndarray],
    rng: np.random.Generator,
    size: tuple[int, int] = (640, 640),
    layout: str = "scatter",
    cfg: PhotoSimConfig = PRESETS["default"],
    distractors: Sequence[np.ndarray] = (),
    holders: Sequence[str | None] | None = None,
) -> Scene:
    """A photo (H×W = ``size``) of the given scans: ``scatter`` (loose cards, may overlap or leave
    the frame), ``binder`` (a page of pockets in a grid, one camera pose for the page), ``table``
    (laid out apart, each turned a little, as a collector photographs a few cards) or, with no
    scans, a negative photo without any card. Corners are in image coordinates and may lie
    outside the frame; ``visible`` is the fraction of the card's area that is visible.

    ``distractors`` (images of things that are not card faces: card backs, phones, paper…) lie on
    the table under the cards; ``holders[i] == "slab"`` puts card ``i`` in a graded slab, whose
    corners are the card's own, not the slab's."""
    if layout not in ("scatter", "binder", "table"):
        raise ValueError(f"unknown scene layout {layout!r} (scatter, binder, table)")
    H, W = size
    canvas = _Canvas.new(background(rng, H, W), labels=True)
    img, labels = canvas.img, canvas.labels
    diag = math.hypot(W, H)
    for obj in distractors:  # under the cards; never labelled
        oh, ow = obj.shape[:2]
        c = (rng.uniform(0.15, 0.85) * W, rng.uniform(0.15, 0.85) * H)
        roll = rng.uniform(-180, 180) if rng.random() < 0.3 else None
        _composite(canvas, -1, obj, project_card(rng, ow, oh, c, diag, cfg, roll_deg=roll))
    placed: list[tuple[int, np.ndarray]] = []
    n = len(scans)
    if layout == "binder" and n:
        cols = 3 if n <= 9 else 4
        rows = math.ceil(n / cols)
        pitch = min(W * 0.9 / cols, H * 0.9 / rows * CARD_ASPECT)
        cw, ch = pitch * 0.92, pitch * 0.92 / CARD_ASPECT
        grid = np.array(
            [
                [(c - (cols - 1) / 2) * pitch, (r - (rows - 1) / 2) * pitch / CARD_ASPECT]
                for r in range(rows)
                for c in range(cols)
            ][:n],
            np.float32,
        )
        tilt = np.radians(rng.uniform(-cfg.max_tilt_deg, cfg.max_tilt_deg, 2) * 0.6)
        roll = math.radians(rng.uniform(-cfg.max_roll_deg, cfg.max_roll_deg) * 0.5)
        f = diag * rng.uniform(*cfg.focal)
        half = np.array([cols * pitch / 2 + 8, rows * pitch / CARD_ASPECT / 2 + 8], np.float32)
        page = project_plane(
            np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], np.float32) * half,
            tilt[0],
            tilt[1],
            roll,
            f,
            (W / 2, H / 2),
        )
        cv2.fillPoly(
            img, [page.astype(np.int32)], tuple(int(v) for v in rng.integers(10, 80, 3)), cv2.LINE_AA
        )
        for i, g in enumerate(grid):
            pts = card_corners(cw, ch) - [cw / 2, ch / 2] + g
            placed.append((i, project_plane(pts, tilt[0], tilt[1], roll, f, (W / 2, H / 2))))
    elif layout == "table" and n:  # laid out apart on a table, one camera pose for the table
        cols = min(n, 4) if n <= 4 else math.ceil(math.sqrt(n))
        rows = math.ceil(n / cols)
        pitch = min(W * 0.86 / cols, H * 0.86 / rows * CARD_ASPECT)
        cw = pitch * rng.uniform(0.62, 0.72)
        ch = cw / CARD_ASPECT
        tilt = np.radians(rng.uniform(-cfg.max_tilt_deg, cfg.max_tilt_deg, 2) * 0.5)
        roll = math.radians(rng.uniform(-cfg.max_roll_deg, cfg.max_roll_deg) * 0.5)
        f = diag * rng.uniform(*cfg.focal) * 1.5
        for i in range(n):
            r, c = divmod(i, cols)
            g = np.array([(c - (cols - 1) / 2) * pitch, (r - (rows - 1) / 2) * pitch / CARD_ASPECT])
            g += rng.uniform(-0.06, 0.06, 2) * pitch
            a = math.radians(rng.uniform(-10, 10))
            rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]], np.float32)
            pts = (card_corners(cw, ch) - [cw / 2, ch / 2]) @ rot.T + g
            placed.append((i, project_plane(pts, tilt[0], tilt[1], roll, f, (W / 2, H / 2))))
    else:
        for i in range(n):
            cw = rng.uniform(0.18, 0.45) * min(W, H)
            c = (rng.uniform(0.1, 0.9) * W, rng.uniform(0.1, 0.9) * H)
            placed.append(
                (
                    i,
                    project_card(
                        rng,
                        cw,
                        cw / CARD_ASPECT,
                        c,
                        diag,
                        cfg,
                        roll_deg=rng.uniform(-180, 180) if rng.random() < 0.3 else None,
                    ),
                )
            )
    areas = {}
    for i, corners in placed:
        cw = float(np.linalg.norm(corners[1] - corners[0]))
        card = _card_layer(rng, scans[i], max(16, round(cw)), max(22, round(cw / CARD_ASPECT)), cfg)
        if holders is not None and holders[i] == "slab" and layout == "scatter":
            from cardid.synth.objects import slab

            holder, inner = slab(rng, card)
            ch, cwi = card.shape[:2]
            Hc = cv2.getPerspectiveTransform(card_corners(cwi, ch), corners)
            hh, hw = holder.shape[:2]
            outer = cv2.perspectiveTransform((card_corners(hw, hh) - inner[0])[None], Hc)[0]
            _composite(canvas, i, holder, outer.astype(np.float32), shadow=True)
            inside = np.zeros(labels.shape, np.uint8)
            cv2.fillPoly(inside, [np.round(corners).astype(np.int32)], 1)
            labels[(labels == i) & (inside == 0)] = -1  # the slab is not the card
        else:
            _composite(canvas, i, card, corners, shadow=layout != "binder")
        areas[i] = abs(cv2.contourArea(corners))
    if layout == "binder" and n:
        _sleeve(rng, canvas, page, cfg.model_copy(update={"p_toploader": 0.0}))
    if n and rng.random() < cfg.p_finger:
        cover = draw_fingers(rng, img, placed[int(rng.integers(0, n))][1], n=1)
        labels[cover > 0.5] = -1
    photo = camera_effects(rng, canvas, cfg)
    counts = np.bincount(labels[labels >= 0].ravel(), minlength=n)
    cards = [SceneCard(i, corners, float(min(1.0, counts[i] / max(areas[i], 1.0)))) for i, corners in placed]
    return Scene(photo, cards)
