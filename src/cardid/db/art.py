"""Which gallery cards show the same art: the one place that says so.

Two questions, two tests:

* **near-identical scans** (:func:`similar_scans`): the same picture, whatever the card: 64-bit
  pHashes at most ``SAME_ART_BITS`` apart, or (by default) embeddings at cosine ≥ 0.9. Cheap; used
  to verify a clear winner's look-alikes before stopping, to say which printings could be confused
  with a match, and (pHash only) to keep look-alikes out of the simulated unknown-card trials.
* **same art, other frame** (:meth:`ArtRelations.differs`): two printings of one card name share
  their art when their art boxes match keypoint for keypoint (a reprint in a new frame), and show
  other art when they do not (Fossil's Gastly beside base1's), unless the whole cards match (holo
  foil hides an art box). The metadata's ``art_id`` decides where it has one (synthetic catalogs).
"""

from __future__ import annotations

import weakref

import numpy as np

from cardid.db.store import CardDB
from cardid.db.verify import SAME_ART_BITS, mutual_inliers

#: embeddings at least this close show the same picture
SIMILAR_COSINE = 0.9
#: two gallery scans whose art boxes share at most this many inliers …
ART_DIFFERS_INLIERS = 8
#: … and whose whole cards share fewer than this (holo foil hides a shared art box) show
#: different art: on the real gallery, different art 4-6 art-box inliers, the same art in a
#: new frame 24-370, holo against non-holo 12-14 with 131-166 on the whole card.
SAME_CARD_WHOLE_INLIERS = 60


def similar_scans(db: CardDB, row: int, rows=None, cosine: float | None = SIMILAR_COSINE) -> list[int]:
    """The rows among ``rows`` (default: every row) whose scans are near-identical to ``row``'s:
    pHash within ``SAME_ART_BITS`` bits, or embedding cosine ≥ ``cosine`` (None: pHash only)."""
    idx = np.arange(len(db)) if rows is None else np.asarray(list(rows), np.int64)
    near = np.zeros(len(idx), bool)
    if db.features is not None:
        h = np.asarray(db.features.hashes)
        near |= np.bitwise_count(h[idx] ^ h[row]) <= SAME_ART_BITS
    if cosine is not None and len(idx):
        e = db.embeddings
        near |= np.array([float(e[r] @ e[row]) for r in idx]) >= cosine
    return [int(r) for r in idx[near]]


def same_card_rows(db: CardDB, row: int) -> set[int]:
    """The row and every other printing of its card: the same name, the same ``art_id`` in the
    metadata (synthetic catalogs), or a near-identical scan (pHash). What an unknown-card trial
    removes from the DB: an unknown card is a new card; a missing printing of a known one is the
    reprint problem, which the printing decision handles instead."""
    rows = set(db.printings_of(row))
    art = getattr(db.records[db.ids[row]], "art_id", None)
    if art is not None:
        rows |= {i for i, c in enumerate(db.ids) if getattr(db.records[c], "art_id", None) == art}
    if db.features is not None:
        rows |= set(similar_scans(db, row, cosine=None))
    return rows


#: the pairs compared so far, per DB: a pair depends on the two scans only, so every matcher on
#: one DB (an evaluation's simulated views, its photos, each fold's adapter) shares them
_COMPARED: weakref.WeakKeyDictionary[CardDB, dict[tuple[int, int], bool]] = weakref.WeakKeyDictionary()


class ArtRelations:
    """Same art or not between gallery rows, each pair compared once (scan against scan) per DB."""

    def __init__(self, db: CardDB):
        self.db = db
        self._differs = _COMPARED.setdefault(db, {})

    def differs(self, a: int, b: int) -> bool:
        """Whether rows ``a`` and ``b`` show different art: by their ``art_id`` where the metadata
        has one, else art box and whole card compared. False when it cannot be told (a DB without
        art features): nothing is then ruled out as other art."""
        db = self.db
        art_a = getattr(db.records[db.ids[a]], "art_id", None)
        art_b = getattr(db.records[db.ids[b]], "art_id", None)
        if art_a is not None and art_b is not None:
            return art_a != art_b
        feats = db.features
        if feats is None or feats.art is None:
            return False
        key = (min(a, b), max(a, b))
        if key not in self._differs:
            differs = mutual_inliers(feats.art[a], feats.art[b], feats.cfg) <= ART_DIFFERS_INLIERS
            if differs:  # the art boxes disagree: unless the whole cards agree (holo foil)
                whole = mutual_inliers(feats.whole[a], feats.whole[b], feats.cfg)
                differs = whole < SAME_CARD_WHOLE_INLIERS
            self._differs[key] = differs
        return self._differs[key]

    def printings(self, row: int) -> set[int]:
        """The printings of ``row``'s card (same name) that share its art, itself included."""
        return {r for r in self.db.printings_of(row) if not self.differs(row, r)}
