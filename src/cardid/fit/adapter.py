"""Fit a DB's query adapter (:mod:`cardid.embed.adapter`) on labelled real photos.

Each photo's biggest found card (the corners `cardid recognize` reports) is rectified and embedded
with the DB's model; the adapter maps those embeddings towards the true cards' gallery embeddings.
Its ridge λ is chosen on card-disjoint inner folds of the photos (every printing of a card name in
one fold), so nothing about it is chosen on the photos a fold measures.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from cardid.db.store import CardDB
from cardid.detect.rectify import rectify
from cardid.embed import Embedder
from cardid.embed.adapter import QueryAdapter, choose_lambda, fit_adapter, recall_at
from cardid.errors import CardIDError
from cardid.fit.records import PhotoRecord
from cardid.images import load_rgb


def widest_card(record: PhotoRecord) -> tuple[list, float] | None:
    """(corners, width in px: the mean of its top and bottom edges) of the widest card found in a
    photo's record; None when no card has corners."""
    best = None
    for c in record.cards:
        q = c.corners
        if q and len(q) == 4:
            top = float(np.hypot(q[1][0] - q[0][0], q[1][1] - q[0][1]))
            bottom = float(np.hypot(q[2][0] - q[3][0], q[2][1] - q[3][1]))
            if best is None or (top + bottom) / 2 > best[1]:
                best = (q, (top + bottom) / 2)
    return best


def photo_pairs(
    db: CardDB,
    embedder: Embedder,
    records: Sequence[PhotoRecord],
    progress: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """(query embeddings, true gallery rows, indices into ``records``) for the labelled photo records
    (``file``, ``card_id``, ``cards`` with corners) whose card was found and is in the DB."""
    crops, rows, used = [], [], []
    for i, r in enumerate(records):
        widest = widest_card(r)
        if widest is not None and r.card_id in db.row_of:
            crops.append(rectify(load_rgb(r.file), np.asarray(widest[0], np.float32)))
            rows.append(db.row_of[r.card_id])
            used.append(i)
        if progress:
            progress(1)
    if not crops:
        raise CardIDError(
            "no labelled photo had a card found in it and in the DB: nothing to fit an adapter on"
        )
    q = np.concatenate([embedder.embed(crops[j : j + 64]) for j in range(0, len(crops), 64)])
    return np.asarray(q, np.float32), np.asarray(rows), used


def fit_db_adapter(
    db: CardDB, queries: np.ndarray, rows: np.ndarray, groups: Sequence[int]
) -> tuple[QueryAdapter, dict]:
    """The adapter for ``db`` from photo embeddings and their true rows, λ chosen on the card-disjoint
    inner ``groups`` (a single group: the cards dealt into three); with each inner fold's Recall@1
    without and with an adapter fitted on the others."""
    gallery = np.asarray(db.embeddings, np.float32)
    groups = np.asarray(groups)
    if len(set(groups.tolist())) < 2:  # one inner fold given: split by card instead (still disjoint)
        cards = sorted(set(rows.tolist()))
        if len(cards) < 2:
            raise CardIDError("fitting an adapter needs photos of at least 2 cards")
        groups = np.array([cards.index(r) % min(3, len(cards)) for r in rows.tolist()])
    lam = choose_lambda(queries, gallery, rows, groups)
    before, after = [], []
    for g in sorted(set(groups.tolist())):
        fit, held = groups != g, groups == g
        a = fit_adapter(queries[fit], gallery[rows[fit]], lam)
        before.append(recall_at(queries[held], gallery, rows[held]))
        after.append(recall_at(a(queries[held]), gallery, rows[held]))
    stats = {
        "pairs": len(rows),
        "lam": lam,
        "inner_folds": len(before),
        "recall@1_without": float(np.mean(before)),
        "recall@1_with": float(np.mean(after)),
    }
    return fit_adapter(queries, gallery[rows], lam), stats


def adapt_db(
    db: CardDB,
    embedder: Embedder,
    records: Sequence[PhotoRecord],
    groups: Sequence[int],
    source: str | Path = "",
    progress: Callable[[int], None] | None = None,
) -> dict:
    """Fit and store ``db``'s query adapter from labelled photo records (``groups[i]``: record i's
    card-disjoint inner fold). Returns what was measured on the inner folds."""
    q, rows, used = photo_pairs(db, embedder, records, progress)
    adapter, stats = fit_db_adapter(db, q, rows, [groups[i] for i in used])
    db.save_adapter(
        adapter, source=str(source), **{k: v for k, v in stats.items() if k not in ("pairs", "lam")}
    )
    return stats
