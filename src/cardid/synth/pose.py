"""Where a card is in a photo: its corners in its own frame, a random 3-D pose seen through a
pinhole camera, and the die-cut mask with rounded corners. Corners are always TL, TR, BR, BL."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    from cardid.synth.settings import PhotoSimConfig


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
