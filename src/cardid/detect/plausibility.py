"""How much a found quadrilateral looks like one card: a score in [0, 1] from its shape alone.

A card outline seen in a photo is a convex quadrilateral whose sides come in two near-equal pairs,
with near-right angles, near-equal diagonals and — once the perspective is undone — the card's
aspect (88:63 ≈ 1.40); it lies in the photo. Each of these gives a factor in [0, 1] and the score
is their product, so one bad property is enough to make a quad implausible. The factors' widths
allow for a card photographed at an angle (up to about 40° off the perpendicular).

What counts as too implausible is not set here: the threshold is fitted on labelled photos
(:mod:`cardid.fit.gate`), and the finder's boxes below it are dropped before recognition.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from cardid.detect.geometry import order_corners

#: boxes less plausible than this are dropped before recognition: fitted (:mod:`cardid.fit.gate`,
#: ``benchmarks/fit_gate.py`` → ``benchmarks/results/gate.json``) to keep 98 % of the card boxes on
#: the detection set's train photos and 150 simulated scenes; the smaller of the two finders' fits
#: (classical 0.075, the cpu-real YOLO11n-OBB 0.03)
MIN_PLAUSIBILITY = 0.03
#: the card's long side over its short side (88 mm : 63 mm)
CARD_RATIO = 88.0 / 63.0
#: the factors' tolerances: log aspect ratio, degrees off a right angle, relative difference of
#: opposite sides and of the diagonals
ASPECT_TOL, ANGLE_TOL, SIDE_TOL, DIAGONAL_TOL = 0.16, 30.0, 0.35, 0.35


@dataclass(frozen=True)
class Plausibility:
    """The score and what it was made of (each factor in [0, 1])."""

    score: float
    aspect: float  # long over short side, mean of opposite sides
    convex: bool
    angle: float  # the largest deviation of a corner from 90°, degrees
    sides: float  # the shorter of each pair of opposite sides over the longer, the smaller pair
    diagonals: float  # the shorter diagonal over the longer
    inside: float  # the share of the quad's area inside the photo

    def to_json(self) -> dict:
        d = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in asdict(self).items()}
        return d


def _inside_share(pts: np.ndarray, width: int, height: int) -> float:
    """The share of a convex quad's area inside the ``width`` × ``height`` photo (clipped polygon)."""
    poly = [tuple(p) for p in pts.tolist()]
    for axis, bound, keep_below in (
        (0, 0.0, False),
        (0, float(width), True),
        (1, 0.0, False),
        (1, float(height), True),
    ):
        out = []
        for i, p in enumerate(poly):
            q = poly[(i + 1) % len(poly)]
            p_in = p[axis] <= bound if keep_below else p[axis] >= bound
            q_in = q[axis] <= bound if keep_below else q[axis] >= bound
            if p_in:
                out.append(p)
            if p_in != q_in:
                t = (bound - p[axis]) / (q[axis] - p[axis])
                out.append((p[0] + t * (q[0] - p[0]), p[1] + t * (q[1] - p[1])))
        poly = out
        if not poly:
            return 0.0
    total = _area(pts)
    return min(1.0, _area(np.asarray(poly)) / total) if total > 0 else 0.0


def _area(pts: np.ndarray) -> float:
    x, y = pts[:, 0], pts[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def plausibility(corners, width: int, height: int) -> Plausibility:
    """The plausibility of ``corners`` (four points, any order) as one card in a photo of
    ``width`` × ``height`` pixels."""
    pts = order_corners(np.asarray(corners, np.float64)).astype(np.float64)
    edges = [pts[(i + 1) % 4] - pts[i] for i in range(4)]
    lengths = [float(np.hypot(*e)) for e in edges]
    if min(lengths) <= 1e-6:
        return Plausibility(0.0, 0.0, False, 90.0, 0.0, 0.0, 0.0)
    cross = [float(e[0] * f[1] - e[1] * f[0]) for e, f in zip(edges, edges[1:] + edges[:1], strict=True)]
    convex = all(c > 0 for c in cross) or all(c < 0 for c in cross)
    angles = []
    for i in range(4):
        a, b = -edges[i - 1], edges[i]
        cos = float(np.dot(a, b) / (np.hypot(*a) * np.hypot(*b)))
        angles.append(math.degrees(math.acos(max(-1.0, min(1.0, cos)))))
    angle = max(abs(a - 90.0) for a in angles)
    pair = [(lengths[0], lengths[2]), (lengths[1], lengths[3])]
    sides = min(min(p) / max(p) for p in pair)
    d1, d2 = float(np.hypot(*(pts[2] - pts[0]))), float(np.hypot(*(pts[3] - pts[1])))
    diagonals = min(d1, d2) / max(d1, d2)
    a, b = (lengths[0] + lengths[2]) / 2, (lengths[1] + lengths[3]) / 2
    aspect = max(a, b) / min(a, b)
    inside = _inside_share(pts, width, height) if convex else 0.0
    factors = (
        math.exp(-((math.log(aspect / CARD_RATIO) / ASPECT_TOL) ** 2)),
        math.exp(-((angle / ANGLE_TOL) ** 2)),
        math.exp(-(((1 - sides) / SIDE_TOL) ** 2)),
        math.exp(-(((1 - diagonals) / DIAGONAL_TOL) ** 2)),
        inside,
    )
    score = float(np.prod(factors)) if convex else 0.0
    return Plausibility(score, aspect, convex, angle, sides, diagonals, inside)
