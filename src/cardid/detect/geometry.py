"""Card outlines in photo pixels: corner order and box overlap (NumPy only, no model, no synthesis)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def order_corners(pts: np.ndarray) -> np.ndarray:
    """Four points as TL, TR, BR, BL (clockwise in image coordinates, starting top-left)."""
    pts = np.asarray(pts, np.float32).reshape(4, 2)
    c = pts.mean(0)
    ang = np.arctan2(pts[:, 1] - c[1], pts[:, 0] - c[0])
    pts = pts[np.argsort(ang)]  # clockwise on screen (y down), starting anywhere
    start = int(np.argmin(pts.sum(1)))  # top-left: smallest x + y
    return np.roll(pts, -start, axis=0)


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two axis-aligned boxes ``(x0, y0, x1, y1)``."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def corners_box(corners) -> tuple[float, float, float, float]:
    """The axis-aligned box ``(x0, y0, x1, y1)`` enclosing a card's corners."""
    xs, ys = [float(p[0]) for p in corners], [float(p[1]) for p in corners]
    return min(xs), min(ys), max(xs), max(ys)
