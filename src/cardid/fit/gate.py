"""The finder's gate, fitted: the plausibility (:mod:`cardid.detect.plausibility`) below which a
found box is not taken for a card.

Each labelled photo (real photos of the detection set with their card boxes, simulated scenes with
their cards' corners) goes through the finder as recognition runs it (boxes refined); a box is a
card when its enclosing box covers a labelled card (IoU ≥ 0.5), else it is not. The threshold is
the largest that keeps at least ``keep`` of the card boxes: as many non-cards as possible are
dropped while hardly a card is lost. Never fitted on the photos the recognizer is measured on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from cardid.detect.geometry import box_iou, corners_box
from cardid.detect.plausibility import plausibility
from cardid.detect.rectify import refine_corners
from cardid.errors import CardIDError

#: thresholds tried
THRESHOLDS = tuple(round(x, 3) for x in (0.0, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3))


@dataclass(frozen=True)
class BoxSample:
    """One found box: its plausibility, whether it covers a labelled card, and where it came from."""

    plausibility: float
    is_card: bool
    source: str = ""


def label_boxes(
    detector,
    photos: Iterable[tuple[np.ndarray, Sequence[tuple[float, float, float, float]]]],
    source: str = "",
    refine: bool = True,
    progress: Callable[[int], None] | None = None,
) -> list[BoxSample]:
    """Every box the finder gives on ``photos`` (image, its labelled cards' boxes ``x0 y0 x1 y1``)."""
    out = []
    for image, boxes in photos:
        h, w = image.shape[:2]
        for d in detector.detect(image):
            q = refine_corners(image, d.corners) if refine else d.corners
            card = any(box_iou(corners_box(q), b) >= 0.5 for b in boxes)
            out.append(BoxSample(plausibility(q, w, h).score, card, source))
        if progress:
            progress(1)
    return out


def fit_gate(samples: Sequence[BoxSample], keep: float = 0.98, thresholds=THRESHOLDS) -> dict:
    """The largest threshold keeping ``keep`` of the card boxes, with what it keeps and drops (by
    source too)."""
    cards = np.array([s.plausibility for s in samples if s.is_card])
    other = np.array([s.plausibility for s in samples if not s.is_card])
    if len(cards) == 0:
        raise CardIDError("fitting the finder's gate needs boxes that cover labelled cards; none did")
    ok = [t for t in thresholds if (cards >= t).mean() >= keep] or [min(thresholds)]
    t = max(ok)

    def figures(ss: Sequence[BoxSample]) -> dict:
        c = [s.plausibility >= t for s in ss if s.is_card]
        o = [s.plausibility < t for s in ss if not s.is_card]
        return {
            "card_boxes": len(c),
            "card_boxes_kept": float(np.mean(c)) if c else None,
            "other_boxes": len(o),
            "other_boxes_dropped": float(np.mean(o)) if o else None,
        }

    sources = sorted({s.source for s in samples})
    return {
        "threshold": t,
        "keep": keep,
        **figures(samples),
        "by_source": {src: figures([s for s in samples if s.source == src]) for src in sources},
        "other_dropped": float((other < t).mean()) if len(other) else None,
    }
