"""What a phone sees around and on a card besides the card itself: the surface it lies on
(wood, cloth, playmat, table, clutter), fingers holding it, the holo foil's shimmer, and the
noise fields the camera simulation draws from. Every draw comes from the ``Generator`` passed in."""

from __future__ import annotations

import math

import cv2
import numpy as np

_BANK_SIZE = 800
_NOISE_BANK: np.ndarray | None = None


def sensor_noise(rng: np.random.Generator, h: int, w: int, c: int = 3) -> np.ndarray:
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


def lowfreq(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    g = rng.random((cells, max(2, round(cells * w / max(h, 1)))), dtype=np.float32)
    return cv2.resize(g, (w, h), interpolation=cv2.INTER_CUBIC)


def to_u8(x: np.ndarray) -> np.ndarray:
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
        stripes = np.sin((ramp + lowfreq(rng, h, w, 4) * rng.uniform(5, 20)) * rng.uniform(0.16, 0.6))
        tex = 1 + 0.12 * stripes + 0.1 * (lowfreq(rng, h, w, 12) - 0.5)
    elif kind == "cloth":
        tex = 1 + 0.1 * sensor_noise(rng, h, w, 1)[..., 0] + 0.2 * (lowfreq(rng, h, w, 6) - 0.5)
    elif kind == "table":
        tex = 1 + 0.15 * (lowfreq(rng, h, w, 2) - 0.5) + 0.015 * sensor_noise(rng, h, w, 1)[..., 0]
    if kind == "playmat":
        img = cv2.merge([lowfreq(rng, h, w, int(rng.integers(2, 7))) for _ in range(3)])
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
    return cv2.resize(to_u8(img), (W, H), interpolation=cv2.INTER_LINEAR)


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
    mod = lowfreq(rng, y1 - y0, w, 3) * (strength * 255)
    pattern = cv2.merge([np.sin(phase + k * 2.09) * mod for k in range(3)])
    out = card.copy()
    out[y0:y1] = np.clip(card[y0:y1] + pattern + 0.5, 0, 255).astype(np.uint8)
    return out
