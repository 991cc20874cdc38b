"""The camera half of the photo simulation: the scene in front of the lens (:class:`Canvas`) and
what the phone does to it (light and white balance, glare, defocus or motion blur, sensor noise,
ISP sharpening, JPEG); saturating uint8 arithmetic throughout, never a wrap-around."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

from cardid.synth.surfaces import lowfreq, sensor_noise

if TYPE_CHECKING:
    from cardid.synth.settings import PhotoSimConfig


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
class Canvas:
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
    def new(cls, img: np.ndarray, labels: bool = False) -> Canvas:
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
    rng: np.random.Generator, canvas: Canvas, cfg: PhotoSimConfig, noise_gain: float = 1.0
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
        + (lowfreq(rng, lh, lw, 3) - 0.5) * cfg.illumination * 0.6
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
    cv2.multiply(sd, sensor_noise(rng, h, w), dst=sd)
    out = cv2.add(out, sd, dtype=cv2.CV_8U)
    if rng.random() < cfg.p_sharpen:  # the phone's ISP: unsharp mask, saturating
        amount = rng.uniform(*cfg.sharpen_amount)
        out = cv2.addWeighted(out, 1 + amount, cv2.GaussianBlur(out, (0, 0), 1.0), -amount, 0)
    if rng.random() < cfg.p_jpeg:
        q = int(rng.uniform(*cfg.jpeg_quality))
        _ok, buf = cv2.imencode(".jpg", cv2.cvtColor(out, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, q])
        out = cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    return out
