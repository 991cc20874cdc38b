"""From four detected corners to an upright card crop at the card's aspect.

Corners are ordered TL TR BR BL by position; a card lying sideways (its top edge longer than its
left edge) is turned so the crop is portrait. A detector cannot tell a card from the same card
upside down, so recognition tries the crop and its 180° turn (:func:`orientations`).
"""

from __future__ import annotations

import cv2
import numpy as np

from cardid.detect.geometry import order_corners
from cardid.preprocess import CARD_ASPECT


def portrait_corners(corners: np.ndarray) -> np.ndarray:
    """TL TR BR BL such that TL→TR is the card's short (top) edge."""
    pts = order_corners(corners)
    top = np.linalg.norm(pts[1] - pts[0]) + np.linalg.norm(pts[2] - pts[3])
    side = np.linalg.norm(pts[3] - pts[0]) + np.linalg.norm(pts[2] - pts[1])
    return np.roll(pts, -1, axis=0) if top > side else pts


def rectify(image: np.ndarray, corners: np.ndarray, max_height: int = 1024) -> np.ndarray:
    """Perspective-warp the quadrilateral to an upright portrait crop (63:88)."""
    src = portrait_corners(corners).astype(np.float32)
    side = (np.linalg.norm(src[3] - src[0]) + np.linalg.norm(src[2] - src[1])) / 2
    h = int(np.clip(round(side), 32, max_height))
    w = max(8, round(h * CARD_ASPECT))
    dst = np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], np.float32)
    m = cv2.getPerspectiveTransform(src, dst)
    return cv2.warpPerspective(image, m, (w, h), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)


def refine_corners(image: np.ndarray, corners: np.ndarray, expand: float = 0.15) -> np.ndarray:
    """A detector's oriented box is a rectangle; a card seen in perspective is not. Look for the
    card's own quadrilateral (edges → contour → four corners) in the box grown by ``expand`` and
    use it when it agrees with the box (similar area, same place); otherwise keep the box."""
    from cardid.detect.classical import ClassicalFinder

    box = portrait_corners(corners).astype(np.float32)
    c = box.mean(0)
    grown = c + (box - c) * (1 + expand)
    side = (np.linalg.norm(box[3] - box[0]) + np.linalg.norm(box[2] - box[1])) / 2
    h = int(np.clip(side * (1 + expand), 64, 640))
    w = round(h * CARD_ASPECT)
    dst = np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], np.float32)
    m = cv2.getPerspectiveTransform(grown, dst)
    patch = cv2.warpPerspective(image, m, (w, h), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
    box_area = w * h / (1 + expand) ** 2
    best = None
    for d in ClassicalFinder(min_area=0.3, max_area=0.99, aspect_range=(0.57, 0.86)).detect(patch):
        area = abs(cv2.contourArea(d.corners))
        if 0.7 * box_area <= area <= 1.25 * box_area and (best is None or area > best[0]):
            best = (area, d.corners)
    if best is None:
        return np.asarray(corners, np.float32)
    back = cv2.perspectiveTransform(best[1].reshape(1, 4, 2).astype(np.float32), np.linalg.inv(m))[0]
    return back


def orientations(crop: np.ndarray) -> list[np.ndarray]:
    """The crop as found and turned 180° (cards upside down are still cards)."""
    return [crop, np.ascontiguousarray(crop[::-1, ::-1])]
