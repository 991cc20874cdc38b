"""Geometric verification: evidence a 224 px global embedding cannot see.

A query crop and a gallery scan are both resized to one canonical card frame (the card's 63:88
aspect, ``frame_height`` px tall). ORB keypoints are matched with a ratio test and a RANSAC
homography; the inlier count says "these are the same printed image". Reprints that share their
art pass that test together, so a second, focused check compares the bottom strip (collector
number, set symbol, regulation mark) of the query, warped into the gallery frame by the
homography, with the gallery's own strip at a higher resolution.

Gallery keypoints, descriptors, strips and perceptual hashes are computed once when the DB is
built and stored next to it (:class:`GalleryFeatures`), so a query pays only for its own
features and for matching a short list.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from cardid.catalog.dedupe import phash_grey
from cardid.errors import CardIDError
from cardid.preprocess import CARD_ASPECT

#: Gallery scans whose 64-bit pHashes differ in at most this many bits show the same art.
SAME_ART_BITS = 10


@dataclass(frozen=True)
class VerifyConfig:
    features: int = 500  # ORB keypoints per image
    frame_height: int = 448  # canonical card frame for keypoints (width from the card aspect)
    ratio: float = 0.8  # Lowe ratio test
    ransac_px: float = 8.0  # reprojection threshold in frame pixels
    ransac_iters: int = 500
    min_matches: int = 8  # fewer ratio-test matches: no homography, 0 inliers
    strip_top: float = 0.86  # the bottom strip starts at this fraction of the card height
    strip_width: int = 384  # strips are compared at this card width (finer than the keypoint frame)

    @property
    def frame_size(self) -> tuple[int, int]:
        return round(self.frame_height * CARD_ASPECT), self.frame_height

    @property
    def strip_scale(self) -> float:
        return self.strip_width / self.frame_size[0]

    @property
    def strip_shape(self) -> tuple[int, int]:
        h = round(self.frame_height * self.strip_scale)
        return h - round(h * self.strip_top), self.strip_width

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Features:
    """One image's local evidence: keypoints (frame px), ORB descriptors, pHash, strip-scale grey."""

    points: np.ndarray  # float32 (n, 2)
    descriptors: np.ndarray  # uint8 (n, 32)
    hash: np.uint64
    fine: np.ndarray | None = None  # grey card at strip resolution (queries only)
    strip: np.ndarray | None = None  # grey bottom strip (gallery)


@dataclass
class Verification:
    inliers: int
    matches: int
    homography: np.ndarray | None  # query frame → gallery frame


_LOCAL = threading.local()  # a CLAHE object keeps state between calls: one per thread


def _clahe() -> cv2.CLAHE:
    if not hasattr(_LOCAL, "clahe"):
        _LOCAL.clahe = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8))
    return _LOCAL.clahe


def _grey(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise CardIDError(f"expected an RGB uint8 image, got shape {rgb.shape} dtype {rgb.dtype}")
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    return cv2.resize(grey, size, interpolation=cv2.INTER_AREA)


def _fine(rgb: np.ndarray, cfg: VerifyConfig) -> np.ndarray:
    return _grey(rgb, (cfg.strip_width, round(cfg.frame_height * cfg.strip_scale)))


def card_hash(rgb: np.ndarray, cfg: VerifyConfig) -> np.uint64:
    """The pHash exactly as :func:`extract` computes it (from the fine grey card)."""
    return phash_grey(_fine(rgb, cfg))


def extract(rgb: np.ndarray, cfg: VerifyConfig, keep_fine: bool = False) -> Features:
    """Keypoints on a contrast-equalised canonical frame, plus the pHash and the fine grey card."""
    fine = _fine(rgb, cfg)
    frame = _clahe().apply(cv2.resize(fine, cfg.frame_size, interpolation=cv2.INTER_AREA))
    orb = cv2.ORB_create(nfeatures=cfg.features, fastThreshold=10)
    kps, desc = orb.detectAndCompute(frame, None)
    points = np.array([k.pt for k in kps], np.float32).reshape(-1, 2)
    desc = np.zeros((0, 32), np.uint8) if desc is None else desc
    top = fine.shape[0] - cfg.strip_shape[0]
    return Features(points, desc, phash_grey(fine), fine if keep_fine else None, fine[top:].copy())


def match(q: Features, g_points: np.ndarray, g_desc: np.ndarray, cfg: VerifyConfig) -> Verification:
    """Ratio-test ORB matches, then a robust (USAC) homography; inliers are the verification score."""
    if len(q.descriptors) < 2 or len(g_desc) < 2:
        return Verification(0, 0, None)
    # each query descriptor's two nearest gallery ones, as arrays: what BFMatcher.knnMatch(k=2)
    # computes (the same call underneath, ties broken alike) without a DMatch object per pair
    dist, nearest = cv2.batchDistance(
        q.descriptors, np.ascontiguousarray(g_desc), cv2.CV_32S, normType=cv2.NORM_HAMMING, K=2
    )
    good = np.flatnonzero(dist[:, 0] < cfg.ratio * dist[:, 1])
    if len(good) < cfg.min_matches:
        return Verification(0, len(good), None)
    src = q.points[good]
    dst = g_points[nearest[good, 0]]
    # USAC (OpenCV's modern RANSAC): same inliers as classic RANSAC here at ~1/20 of its time
    h, mask = cv2.findHomography(src, dst, cv2.USAC_ACCURATE, cfg.ransac_px, maxIters=cfg.ransac_iters)
    if h is None or mask is None:
        return Verification(0, len(good), None)
    return Verification(int(mask.sum()), len(good), h)


def warp_strip(q: Features, homography: np.ndarray, cfg: VerifyConfig) -> np.ndarray:
    """The query's bottom strip in the gallery frame (strip resolution), via the homography."""
    if q.fine is None:
        raise CardIDError("query features were extracted without the fine image (keep_fine=True)")
    s = cfg.strip_scale
    scale = np.diag([s, s, 1.0])
    h = scale @ homography @ np.linalg.inv(scale)
    fh, fw = q.fine.shape
    warped = cv2.warpPerspective(q.fine, h, (fw, fh), flags=cv2.INTER_LINEAR, borderValue=0)
    return warped[fh - cfg.strip_shape[0] :]


def _smooth(x: np.ndarray) -> np.ndarray:
    return cv2.GaussianBlur(np.asarray(x, np.float32), (3, 3), 0)


def _ncc(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    den = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / den) if den > 0 else 0.0


def at_resolution(strip: np.ndarray, scale: float) -> np.ndarray:
    """``strip`` as a photo ``scale`` times as fine shows it (down, then back up to its size)."""
    if scale >= 1:
        return strip
    h, w = strip.shape
    small = cv2.resize(
        strip, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA
    )
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def strip_scores(
    warped: list[np.ndarray],
    g_strips: list[np.ndarray],
    min_pixels: int = 12,
    diff: float = 18.0,
    scale: float = 1.0,
) -> list[float] | None:
    """Which of several same-art cards is this? For every pair of cards, compare the query strip
    (warped onto each) with each card's strip only where the two strips differ (collector number,
    set symbol…); a card's score is its worst pairwise lead in zero-mean correlation over those
    pixels. ``None`` when no two strips differ (truly identical printings as far as we can see).

    ``scale`` is the photo's own resolution against the strips' (a crop 192 px wide against
    384 px strips: 0.5): the cards' strips are compared as the photo can show them, so print
    finer than it resolves (``LV. 40`` against ``LV. 42``) is no difference to go by."""
    g = [_smooth(at_resolution(np.asarray(x), scale)) for x in g_strips]
    w = [_smooth(x) for x in warped]
    n = len(g)
    lead = np.zeros((n, n))  # pairs whose strips do not differ: nobody leads
    np.fill_diagonal(lead, np.inf)
    compared = False
    kernel = np.ones((3, 3), np.uint8)
    for i in range(n):
        for j in range(i + 1, n):
            mask = cv2.dilate((np.abs(g[i] - g[j]) > diff).astype(np.uint8), kernel) > 0
            if mask.sum() < min_pixels:
                continue
            compared = True
            d = _ncc(w[i][mask], g[i][mask]) - _ncc(w[j][mask], g[j][mask])
            lead[i, j], lead[j, i] = d, -d
    if not compared:
        return None
    return [float(v) for v in lead.min(axis=1)]


#: The art box as shares of the card (y0, y1, x0, x1): where every era prints the artwork.
ART_BOX = (0.09, 0.56, 0.06, 0.94)


def art_features(rgb: np.ndarray) -> Features:
    """Keypoints of the art box alone (800 ORB on a 400×560 CLAHE-equalised grey card). Scan against
    scan they tell a reprint of the same art in a new frame (24-370 inliers on the real gallery)
    from a same-name card with other art (4-6), which the whole card's keypoints do not: frame,
    name and attack text match across different art (``benchmarks/same_art_pairs.py``)."""
    g = _grey(rgb, (400, 560))
    y0, y1, x0, x1 = ART_BOX
    crop = _clahe().apply(
        np.ascontiguousarray(g[int(y0 * 560) : int(y1 * 560), int(x0 * 400) : int(x1 * 400)])
    )
    kps, desc = cv2.ORB_create(nfeatures=800, fastThreshold=10).detectAndCompute(crop, None)
    pts = np.array([k.pt for k in kps], np.float32).reshape(-1, 2)
    return Features(pts, np.zeros((0, 32), np.uint8) if desc is None else desc, np.uint64(0))


def mutual_inliers(a: Features, b: Features, cfg: VerifyConfig) -> int:
    """Inliers between two images' keypoints, the smaller of the two directions."""
    return min(match(a, b.points, b.descriptors, cfg).inliers, match(b, a.points, a.descriptors, cfg).inliers)
