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
from cardid.images import load_rgb


def widest_card(record: dict) -> tuple[list, float] | None:
    """(corners, width in px: the mean of its top and bottom edges) of the widest card found in a
    photo's record; None when no card has corners."""
    best = None
    for c in record.get("cards", []):
        q = c.get("corners")
        if q and len(q) == 4:
            top = float(np.hypot(q[1][0] - q[0][0], q[1][1] - q[0][1]))
            bottom = float(np.hypot(q[2][0] - q[3][0], q[2][1] - q[3][1]))
            if best is None or (top + bottom) / 2 > best[1]:
                best = (q, (top + bottom) / 2)
    return best


def photo_pairs(
    db: CardDB,
    embedder: Embedder,
    records: Sequence[dict],
    progress: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """(query embeddings, true gallery rows, indices into ``records``) for the labelled photo records
    (``file``, ``card_id``, ``cards`` with corners) whose card was found and is in the DB."""
    crops, rows, used = [], [], []
    for i, r in enumerate(records):
        widest = widest_card(r)
        if widest is not None and r["card_id"] in db.row_of:
            crops.append(rectify(load_rgb(r["file"]), np.asarray(widest[0], np.float32)))
            rows.append(db.row_of[r["card_id"]])
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
    records: Sequence[dict],
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


def adapt_from_photos(
    model,
    db: str | Path,
    photos: str | Path,
    detector: str = "classical",
    conf: float = 0.25,
    folds: int = 5,
    seed: int = 0,
    printing: bool = True,
    records: list[dict] | None = None,
    simulated: list | None = None,
) -> dict:
    """``cardid index adapt``: find the card in each labelled photo, fit and store the DB's query
    adapter (λ on card-disjoint inner folds) and, with ``printing``, refit its printing model on the
    photos' printing sets plus simulated views. Returns the figures and what to tell the user.

    ``records``: the photos already recognised with this model (``file``, ``card_id``, ``cards``,
    ``outcome``, as ``cardid eval photos`` writes them, printing model on, no adapter): reused.
    ``simulated``: the printing sets of simulated views of every card with another printing, made
    beforehand with this model on this DB as it is (an evaluation's): reused likewise."""
    from cardid.catalog.records import name_key
    from cardid.data.photoset import load_photo_set
    from cardid.embed import load_embedder
    from cardid.eval.folds import card_folds
    from cardid.progress import progress

    emb = load_embedder(model)
    card_db = CardDB.load(db, emb)
    photo_set = load_photo_set(photos)
    photo_set.require_cards(card_db.row_of, f"the DB {db}")
    split = card_folds(photo_set, folds, seed, group=lambda c: name_key(card_db.records[c]))
    if records is None:
        records = recognise_photos(card_db, emb, photo_set, detector, conf)
    else:  # recognised beforehand (an evaluation): in the photo set's order, every photo there
        by_file = {str(r["file"]): r for r in records}
        missing = [str(ph.path) for ph in photo_set.photos if str(ph.path) not in by_file]
        if missing:
            raise CardIDError(
                f"{len(missing)} photo(s) of {photos} were not recognised beforehand, e.g. {missing[0]}"
            )
        records = [by_file[str(ph.path)] for ph in photo_set.photos]
    said = [fit_printing_on_photos(card_db, emb, records, simulated)] if printing else []
    with progress(len(records), "fitting") as advance:
        stats = adapt_db(
            card_db, emb, records, [split.fold_of[r["card_id"]] for r in records], photos, advance
        )
    said.insert(
        0,
        f"query adapter stored in {db}: {stats['pairs']} photo ↔ scan pairs, λ {stats['lam']}; "
        f"Recall@1 on held-out inner folds {stats['recall@1_without']:.3f} → {stats['recall@1_with']:.3f}",
    )
    figure = (
        f"adapter from {stats['pairs']} photo ↔ scan pairs (inner folds: Recall@1 "
        f"{stats['recall@1_without']:.3f} → {stats['recall@1_with']:.3f})"
    )
    return {**stats, "said": said, "figure": figure}


def recognise_photos(card_db, emb, photo_set, detector: str = "classical", conf: float = 0.25) -> list[dict]:
    """Each labelled photo's record (cards with corners and the printing model's evidence, its
    outcome) with the model as it is, no adapter: the records `cardid eval photos` keeps."""
    from cardid.decision.match import MatchConfig
    from cardid.eval.outcomes import evaluate_photo_set
    from cardid.progress import progress
    from cardid.recognize import Recognizer, make_detector

    # the printing model's evidence is recorded for every printing set (printing="model")
    rec = Recognizer.open(emb, card_db, make_detector(detector, conf), MatchConfig(printing="model"))
    rec.matcher.adapter = None
    with progress(len(photo_set), "finding cards") as advance:
        return evaluate_photo_set(rec, photo_set.rows(), advance)


def fit_printing_on_photos(card_db, emb, records: list[dict], simulated: list | None = None) -> str:
    """The DB's printing model refitted on simulated views of its cards plus these photos' printing
    sets, stored with its fused calibration (as `eval photos --folds` fits each fold's).
    ``simulated``: those views' printing sets, made beforehand on this DB (else made here)."""
    from cardid.db.calibrate import printing_sets_on_views
    from cardid.eval.refit import fit_on_photos

    fused = (card_db.calibration or {}).get("fused")
    if not fused:
        return "printing model: not fitted (the DB has no fused calibration: run `cardid index calibrate`)"
    if simulated is None:
        simulated = printing_sets_on_views(card_db, emb, card_db.gallery(), cards=None)
    model = fit_on_photos(records, simulated)
    card_db.save_meta(calibration={**card_db.calibration, "fused": {**fused, "printing": model.to_dict()}})
    f = model.fitted
    decides = (
        "it now decides the printing"
        if f["real_sets"]
        else "no photo showed a card with several printings in sight: the rules still decide"
    )
    return (
        f"printing model stored in {card_db.root}: fitted on {f['real_sets']} printing sets of "
        f"{f['real_photos']} photos and {f['simulated_sets']} simulated ones; names a printing at "
        f"p ≥ {model.p_min} ({decides})"
    )
