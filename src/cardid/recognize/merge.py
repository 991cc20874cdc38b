"""One physical card, one record: the finder's boxes of one card merged into one.

A finder often outlines one card several times: the card and its art box or inner frame (nested),
the card and its sleeve or top-loader (nested the other way), two near-identical quads from two
edge maps (overlapping). Before anything reaches a record they are merged here, in two steps:

1. **Geometry, before embedding** (:func:`near_duplicates`): of two quads that are nearly the
   same (intersection over union ≥ ``same``), only the more plausible is embedded.
2. **Identity, after the decision**: a quad holding two or more others that are not one another's
   is a page, a binder or a frame, not a card, and is dropped (:func:`containers`), unless it names
   a card and they name none (a card whose art and text boxes were found inside it). Then, of
   quads that overlap as one card does (their intersection covers ``nested`` of the smaller; or
   less where both name the same card, or where one names a card and the other nothing: a part of
   it), the one kept is the best named: a match before an
   ambiguous set before a back before an unknown, then by fused score; it records how many boxes
   it stands for (``merged``; :func:`one_per_card`).

Two copies of one card side by side do not overlap, so they stay two records.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from cardid.decision.decide import AMBIGUOUS, BACK, MATCH

#: intersection over union from which two quads are one outline found twice
SAME = 0.85
#: share of the smaller quad inside the larger from which two quads are one card
NESTED = 0.6
#: … and from which two quads naming the same card are that card found twice
SAME_NAME = 0.2
#: … and from which a quad naming nothing that overlaps a named card is a part of it
PART = 0.3
#: a quad holding this many others (each ``NESTED`` inside it, not nested in one another) is not a card
CONTAINER_MIN = 2


def _poly(q) -> np.ndarray:
    return cv2.convexHull(np.asarray(q, np.float32).reshape(-1, 2))


def overlap(a, b) -> tuple[float, float]:
    """(intersection over union, intersection over the smaller area) of two convex quads."""
    pa, pb = _poly(a), _poly(b)
    inter = float(cv2.intersectConvexConvex(pa, pb)[0])
    aa, ab = float(cv2.contourArea(pa)), float(cv2.contourArea(pb))
    if inter <= 0 or min(aa, ab) <= 0:
        return 0.0, 0.0
    return inter / (aa + ab - inter), inter / min(aa, ab)


def containers(quads: Sequence, named: Sequence[bool] | None = None, nested: float = NESTED) -> set[int]:
    """The quads that hold ``CONTAINER_MIN`` or more smaller quads, not one another's, and either
    name no card themselves or hold that many named ones (``named[i]``: quad ``i`` was named; None:
    by geometry alone). A card whose art and text boxes were found inside it names itself and they
    name nothing: it is no container; a page of pockets is one."""
    area = [float(cv2.contourArea(_poly(q))) for q in quads]
    out = set()
    for i, q in enumerate(quads):
        inner = [
            j for j in range(len(quads)) if j != i and area[j] < area[i] and overlap(q, quads[j])[1] >= nested
        ]
        distinct = [
            j for j in inner if not any(k != j and overlap(quads[j], quads[k])[1] >= nested for k in inner)
        ]
        if len(distinct) >= CONTAINER_MIN and (
            named is None or not named[i] or sum(named[j] for j in distinct) >= CONTAINER_MIN
        ):
            out.add(i)
    return out


def repeats(quads: Sequence, plausibility: Sequence[float], same: float = SAME) -> dict[int, int]:
    """Each quad that repeats a more plausible one (intersection over union ≥ ``same``) → the one
    it repeats."""
    order = sorted(range(len(quads)), key=lambda i: -plausibility[i])
    kept: list[int] = []
    out: dict[int, int] = {}
    for i in order:
        k = next((k for k in kept if overlap(quads[i], quads[k])[0] >= same), None)
        if k is None:
            kept.append(i)
        else:
            out[i] = k
    return out


def near_duplicates(quads: Sequence, plausibility: Sequence[float], same: float = SAME) -> set[int]:
    """The quads that repeat a more plausible one (:func:`repeats`)."""
    return set(repeats(quads, plausibility, same))


def _rank(kind: str, score: float) -> tuple[int, float]:
    return ({MATCH: 3, AMBIGUOUS: 2, BACK: 1}.get(kind, 0), score)


def one_per_card(
    quads: Sequence,
    kinds: Sequence[str],
    scores: Sequence[float],
    names: Sequence[str | None],
    nested: float = NESTED,
    same_name: float = SAME_NAME,
) -> list[tuple[int, int]]:
    """``(index kept, boxes it stands for)`` per physical card, in the quads' order: each group of
    quads overlapping as one card does (``nested``; ``same_name`` where both name one card) keeps
    its best named member."""
    n = len(quads)
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(n):
        for j in range(i + 1, n):
            share = overlap(quads[i], quads[j])[1]
            same = names[i] is not None and names[i] == names[j]
            part = (kinds[i] in (MATCH, AMBIGUOUS)) != (kinds[j] in (MATCH, AMBIGUOUS)) and share >= PART
            if share >= nested or part or (share >= same_name and same):
                parent[find(i)] = find(j)
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(find(i), []).append(i)
    best = [(max(g, key=lambda i: (_rank(kinds[i], scores[i]), -i)), len(g)) for g in groups.values()]
    return sorted(best)
