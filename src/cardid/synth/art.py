"""Drawing for the procedural card scans: the art window's picture (sky, hills, glow, a creature
of ellipses, particles) and the card's furniture (text, energy symbols, set symbols)."""

from __future__ import annotations

import math

import cv2
import numpy as np


def noise_field(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    g = rng.random((cells, max(2, round(cells * w / h)))).astype(np.float32)
    return cv2.resize(g, (w, h), interpolation=cv2.INTER_CUBIC)


def render_art(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Procedural art: sky gradient, hills, glow, a creature of ellipses, particles, texture."""
    c1, c2 = rng.integers(20, 256, 3), rng.integers(20, 256, 3)
    t = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    art = (c1 * (1 - t) + c2 * t) * np.ones((1, w, 1), np.float32)
    art += (noise_field(rng, h, w, int(rng.integers(3, 9)))[..., None] - 0.5) * rng.uniform(30, 90)
    img = np.clip(art, 0, 255).astype(np.uint8)
    if rng.random() < 0.6:  # glow
        center = (int(rng.integers(0, w)), int(rng.integers(0, h // 2)))
        glow = np.zeros((h, w), np.float32)
        cv2.circle(glow, center, int(rng.integers(h // 8, h // 3)), 1.0, -1)
        glow = cv2.GaussianBlur(glow, (0, 0), h / 10)[..., None]
        img = np.clip(img + glow * rng.integers(60, 200, 3), 0, 255).astype(np.uint8)
    for _ in range(int(rng.integers(1, 4))):  # hills
        base = int(rng.integers(h // 2, h))
        xs = np.arange(0, w + 8, 8)
        ys = base + (h / 8) * np.sin(xs / w * rng.uniform(2, 9) + rng.uniform(0, 6))
        poly = np.concatenate([np.stack([xs, ys], 1), [[w, h], [0, h]]]).astype(np.int32)
        cv2.fillPoly(img, [poly], tuple(int(v) for v in rng.integers(0, 256, 3)), cv2.LINE_AA)
    # creature: body, head, limbs, eyes
    cx, cy = int(rng.uniform(0.3, 0.7) * w), int(rng.uniform(0.45, 0.7) * h)
    body = tuple(int(v) for v in rng.integers(0, 256, 3))
    bw, bh = int(rng.uniform(0.12, 0.3) * w), int(rng.uniform(0.12, 0.3) * h)
    for _ in range(int(rng.integers(2, 6))):
        ang = rng.uniform(0, 2 * math.pi)
        end = (int(cx + math.cos(ang) * bw * 1.6), int(cy + math.sin(ang) * bh * 1.6))
        cv2.line(img, (cx, cy), end, body, int(rng.integers(3, max(4, w // 25))), cv2.LINE_AA)
    cv2.ellipse(img, (cx, cy), (bw, bh), float(rng.uniform(-30, 30)), 0, 360, body, -1, cv2.LINE_AA)
    accent = tuple(int(v) for v in rng.integers(0, 256, 3))
    cv2.ellipse(img, (cx, cy + bh // 3), (bw // 2, bh // 3), 0, 0, 360, accent, -1, cv2.LINE_AA)
    hx, hy, hr = cx + int(rng.uniform(-0.3, 0.3) * bw), cy - bh, max(4, int(bw * rng.uniform(0.5, 0.9)))
    cv2.circle(img, (hx, hy), hr, body, -1, cv2.LINE_AA)
    for ex in (hx - hr // 2, hx + hr // 2):
        cv2.circle(img, (ex, hy - hr // 6), max(2, hr // 4), (255, 255, 255), -1, cv2.LINE_AA)
        cv2.circle(img, (ex + hr // 12, hy - hr // 6), max(1, hr // 8), (10, 10, 10), -1, cv2.LINE_AA)
    if rng.random() < 0.7:  # ears / horns
        for s in (-1, 1):
            tip = (hx + s * hr, hy - int(hr * rng.uniform(1.2, 2.2)))
            pts = np.array([(hx + s * hr // 3, hy - hr // 2), (hx + s * hr, hy - hr // 6), tip], np.int32)
            cv2.fillPoly(img, [pts], accent, cv2.LINE_AA)
    for _ in range(int(rng.integers(0, 30))):  # particles
        p = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        cv2.circle(img, p, int(rng.integers(1, 4)), tuple(int(v) for v in rng.integers(150, 256, 3)), -1)
    return img


def draw_text(img, s, org, scale, color, thick=1, font=cv2.FONT_HERSHEY_DUPLEX):
    cv2.putText(img, s, org, font, scale, color, thick, cv2.LINE_AA)


def draw_energy(img, center, r, color):
    cv2.circle(img, center, r, (40, 40, 40), -1, cv2.LINE_AA)
    cv2.circle(img, center, max(1, r - 2), color, -1, cv2.LINE_AA)


def draw_set_symbol(img, center, r, kind, color=(30, 30, 30)):
    cx, cy = center
    if kind % 4 == 0:
        cv2.circle(img, center, r, color, 2, cv2.LINE_AA)
    elif kind % 4 == 1:
        pts = np.array([(cx, cy - r), (cx + r, cy + r), (cx - r, cy + r)], np.int32)
        cv2.polylines(img, [pts], True, color, 2, cv2.LINE_AA)
    elif kind % 4 == 2:
        cv2.rectangle(img, (cx - r, cy - r), (cx + r, cy + r), color, 2, cv2.LINE_AA)
    else:
        pts = np.array([(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)], np.int32)
        cv2.fillPoly(img, [pts], color, cv2.LINE_AA)
