"""A detector without training: OpenCV edges → contours → card-shaped quadrilaterals.

The baseline every learned detector is reported beside. It finds cards whose border contrasts with
the background; it fails when a corner runs into a shadow or a hand, and on binder pages whose
pockets merge the cards' outlines.
"""

from __future__ import annotations

import cv2
import numpy as np

from cardid.detect import Detection
from cardid.preprocess import CARD_ASPECT


class ClassicalFinder:
    def __init__(self, min_area: float = 0.01, max_area: float = 0.95, aspect_tolerance: float = 0.25):
        self.min_area, self.max_area, self.aspect_tolerance = min_area, max_area, aspect_tolerance

    def detect(self, image: np.ndarray) -> list[Detection]:
        h, w = image.shape[:2]
        scale = 640 / max(h, w)
        small = cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        grey = cv2.GaussianBlur(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY), (5, 5), 0)
        med = float(np.median(grey))
        edges = cv2.Canny(grey, int(max(0, 0.66 * med)), int(min(255, 1.33 * med)))
        edges = cv2.dilate(edges, np.ones((3, 3), np.uint8))
        contours, _ = cv2.findContours(edges, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
        area_img = small.shape[0] * small.shape[1]
        found: list[Detection] = []
        for c in contours:
            area = cv2.contourArea(c)
            if not (self.min_area * area_img <= area <= self.max_area * area_img):
                continue
            quad = cv2.approxPolyDP(c, 0.02 * cv2.arcLength(c, True), True)
            if len(quad) != 4 or not cv2.isContourConvex(quad):
                rect = cv2.minAreaRect(c)
                if area < 0.85 * rect[1][0] * rect[1][1]:  # not solid enough to be a card
                    continue
                quad = cv2.boxPoints(rect)
            quad = np.asarray(quad, np.float32).reshape(4, 2)
            (_, _), (rw, rh), _ = cv2.minAreaRect(quad)
            if min(rw, rh) == 0:
                continue
            aspect = min(rw, rh) / max(rw, rh)
            if abs(aspect - CARD_ASPECT) > self.aspect_tolerance * CARD_ASPECT:
                continue
            score = float(area / (rw * rh)) * (1 - abs(aspect - CARD_ASPECT))
            found.append(Detection(quad / scale, score))
        return _drop_nested(_nms(found, 0.5))


def _iou(a: tuple, b: tuple) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _nms(dets: list[Detection], iou: float) -> list[Detection]:
    keep: list[Detection] = []
    for d in sorted(dets, key=lambda d: -d.score):
        if all(_iou(d.box(), k.box()) < iou for k in keep):
            keep.append(d)
    return keep


def _drop_nested(dets: list[Detection], inside: float = 0.8, min_ratio: float = 0.25) -> list[Detection]:
    """A card's art box is found too: drop a detection lying within a larger one unless it is much
    smaller (a card on a binder page, whose outline also has the card's aspect, stays)."""
    by_area = sorted(dets, key=lambda d: -abs(cv2.contourArea(d.corners)))
    keep: list[Detection] = []
    for d in by_area:
        a = d.box()
        area = (a[2] - a[0]) * (a[3] - a[1])
        nested = False
        for k in keep:
            b = k.box()
            if _overlap(a, b) >= inside * area and area >= min_ratio * (b[2] - b[0]) * (b[3] - b[1]):
                nested = True
                break
        if not nested:
            keep.append(d)
    return sorted(keep, key=lambda d: -d.score)


def _overlap(a: tuple, b: tuple) -> float:
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
