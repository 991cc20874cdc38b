"""A detector without training: OpenCV edges → contours → card-shaped quadrilaterals.

The baseline every learned detector is reported beside. It finds cards whose border contrasts with
the background; it fails when a corner runs into a shadow or a hand, and on binder pages whose
pockets merge the cards' outlines.
"""

from __future__ import annotations

import cv2
import numpy as np

from cardid.detect import Detection
from cardid.detect.geometry import box_iou
from cardid.preprocess import CARD_ASPECT


class ClassicalFinder:
    """Card-shaped quadrilaterals from several edge maps (Canny at three thresholds, Otsu's
    foreground and its inverse): each contour's convex hull is approximated to four corners (the
    tolerance grows until it is), else its minimum-area rectangle; candidates must be solid,
    card-shaped (short/long side 0.55–0.9), nearly right-angled, outlined along all four sides,
    printed inside (not a blank patch) and big enough. Scored by area × aspect fit × solidity;
    overlapping candidates keep the best, and a card's own art box (nested inside it) is dropped."""

    def __init__(
        self,
        min_area: float = 0.01,
        max_area: float = 0.98,
        aspect_range: tuple[float, float] = (0.55, 0.9),
        min_solidity: float = 0.85,
        min_support: float = 0.6,
        min_content: float = 8.0,
        max_side: int = 640,
    ):
        self.min_area, self.max_area, self.min_support = min_area, max_area, min_support
        self.min_content = min_content
        self.aspect_range, self.min_solidity, self.max_side = aspect_range, min_solidity, max_side

    def edge_maps(self, grey: np.ndarray) -> list[tuple[np.ndarray, int]]:
        """(binary map, contour retrieval mode) for each way of seeing the card's outline."""
        med = float(np.median(grey))
        maps = []
        kernel = np.ones((3, 3), np.uint8)
        for lo, hi in ((0.33, 0.66), (0.66, 1.33), (1.0, 2.0)):
            e = cv2.Canny(grey, int(max(0, lo * med)), int(min(255, max(hi * med, lo * med + 10))))
            maps.append((cv2.dilate(e, kernel), cv2.RETR_LIST))
        _, otsu = cv2.threshold(grey, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
        otsu = cv2.morphologyEx(otsu, cv2.MORPH_OPEN, kernel)
        maps += [(otsu, cv2.RETR_EXTERNAL), (255 - otsu, cv2.RETR_EXTERNAL)]
        return maps

    def candidates(self, image: np.ndarray) -> list[Detection]:
        """Every card-shaped quadrilateral found, before overlapping ones are resolved."""
        h, w = image.shape[:2]
        scale = min(1.0, self.max_side / max(h, w))
        small = (
            image
            if scale == 1.0
            else cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        )
        grey = cv2.GaussianBlur(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY), (5, 5), 0)
        area_img = small.shape[0] * small.shape[1]
        lo_a, hi_a = self.min_area * area_img, self.max_area * area_img
        maps = self.edge_maps(grey)
        tol = max(2.0, 0.012 * max(small.shape[:2]))  # how far a side may run from the outline
        found: list[Detection] = []
        for edges, mode in maps:
            contours, _ = cv2.findContours(edges, mode, cv2.CHAIN_APPROX_SIMPLE)
            for c in contours:
                area = cv2.contourArea(c)
                if len(c) < 4 or not lo_a <= area <= hi_a:
                    continue
                quad = _four_corners(cv2.convexHull(c))
                quad_area = abs(cv2.contourArea(quad))
                # solidity: how much of the quadrilateral the outline fills (a card is a solid shape)
                if quad_area <= 0 or area / quad_area < self.min_solidity or not _angles_ok(quad):
                    continue
                (_, _), (rw, rh), _ = cv2.minAreaRect(quad)
                aspect = min(rw, rh) / max(rw, rh)
                if not self.aspect_range[0] <= aspect <= self.aspect_range[1]:
                    continue
                support = _outline_support(c, quad, tol)
                if support < self.min_support or _interior_std(grey, quad) < self.min_content:
                    continue
                fit = 1.0 - abs(aspect - CARD_ASPECT) / CARD_ASPECT
                score = float(np.sqrt(quad_area / area_img) * fit * support * min(1.0, area / quad_area))
                found.append(Detection(quad / scale, score))
        return found

    def detect(self, image: np.ndarray) -> list[Detection]:
        return _drop_nested(_nms(self.candidates(image), 0.5))


def _angles_ok(quad: np.ndarray, lo: float = 55.0, hi: float = 125.0) -> bool:
    """Every corner of a card seen in perspective stays within ``lo``–``hi`` degrees."""
    for i in range(4):
        a, b, c = quad[i - 1], quad[i], quad[(i + 1) % 4]
        u, v = a - b, c - b
        cos = float(u @ v) / (np.linalg.norm(u) * np.linalg.norm(v) + 1e-9)
        if not lo <= np.degrees(np.arccos(np.clip(cos, -1, 1))) <= hi:
            return False
    return True


def _interior_std(grey: np.ndarray, quad: np.ndarray) -> float:
    """Grey-level spread inside the quadrilateral (shrunk by 20 %): a card face is printed all over
    (art, text: σ ≳ 25), a blank shape — a patch of table, a sheet, a box lid — is flat (σ ≈ 1–2)."""
    c = quad.mean(0)
    inner = np.round(c + (quad - c) * 0.8).astype(np.int32)
    x0, y0 = np.maximum(inner.min(0), 0)
    x1, y1 = np.minimum(inner.max(0) + 1, [grey.shape[1], grey.shape[0]])
    if x1 - x0 < 3 or y1 - y0 < 3:
        return 0.0
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillPoly(mask, [inner - [x0, y0]], 1)
    vals = grey[y0:y1, x0:x1][mask > 0]
    return float(vals.std()) if vals.size else 0.0


def _outline_support(contour: np.ndarray, quad: np.ndarray, tol: float, n: int = 16) -> float:
    """The fraction of points along the quadrilateral's sides (rounded corners left out) that lie
    within ``tol`` px of the outline it was fitted to: a card's outline runs along all four sides,
    while the hull of a stray edge fragment or of a blob has sides across empty space."""
    t = 0.1 + 0.8 * (np.arange(n) + 0.5) / n
    c = contour.reshape(-1, 1, 2).astype(np.float32)
    hits = 0
    for i in range(4):
        a, b = quad[i], quad[(i + 1) % 4]
        for p in a[None] + (b - a)[None] * t[:, None]:
            hits += abs(cv2.pointPolygonTest(c, (float(p[0]), float(p[1])), True)) <= tol
    return hits / (4 * n)


def _four_corners(hull: np.ndarray) -> np.ndarray:
    """A convex hull as four corners: polygon approximation with a growing tolerance, else the
    minimum-area rectangle (a card whose corner is hidden still gives a good box)."""
    peri = cv2.arcLength(hull, True)
    for eps in (0.02, 0.035, 0.05, 0.08):
        quad = cv2.approxPolyDP(hull, eps * peri, True)
        if len(quad) == 4:
            return quad.reshape(4, 2).astype(np.float32)
        if len(quad) < 4:
            break
    return cv2.boxPoints(cv2.minAreaRect(hull)).astype(np.float32)


def _nms(dets: list[Detection], iou: float) -> list[Detection]:
    keep: list[Detection] = []
    for d in sorted(dets, key=lambda d: -d.score):
        if all(box_iou(d.box(), k.box()) < iou for k in keep):
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
