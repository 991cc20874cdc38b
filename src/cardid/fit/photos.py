"""``cardid index adapt``: learn from labelled real photos. Each photo is recognised with the DB's
model (its card found, rectified, embedded), the DB's query adapter is fitted on the photo ↔ scan
pairs (:mod:`cardid.fit.adapter`) and the printing model refitted on the photos' printing sets
plus simulated views (:mod:`cardid.fit.printing`), stored by :func:`cardid.fit.calibrate.store_printing_model`."""

from __future__ import annotations

from pathlib import Path

from cardid.db.store import CardDB
from cardid.errors import CardIDError
from cardid.fit.adapter import adapt_db
from cardid.fit.records import PhotoRecord


def adapt_from_photos(
    model,
    db: str | Path,
    photos: str | Path,
    detector: str = "classical",
    conf: float = 0.25,
    folds: int = 5,
    seed: int = 0,
    printing: bool = True,
    records: list[PhotoRecord] | None = None,
    simulated: list | None = None,
) -> dict:
    """``cardid index adapt``: find the card in each labelled photo, fit and store the DB's query
    adapter (λ on card-disjoint inner folds) and, with ``printing``, refit its printing model on the
    photos' printing sets plus simulated views. Returns the figures and what to tell the user.

    ``records``: the photos already recognised with this model (as ``cardid eval photos`` keeps
    them, :func:`cardid.eval.photos_report.read_photo_records`; printing model on, no adapter): reused.
    ``simulated``: the printing sets of simulated views of every card with another printing, made
    beforehand with this model on this DB as it is (an evaluation's): reused likewise."""
    from cardid.catalog.records import name_key
    from cardid.data.photoset import load_photo_set
    from cardid.embed import load_embedder
    from cardid.fit.folds import card_folds
    from cardid.progress import progress

    emb = load_embedder(model)
    card_db = CardDB.load(db, emb)
    photo_set = load_photo_set(photos)
    photo_set.require_cards(card_db.row_of, f"the DB {db}")
    split = card_folds(photo_set, folds, seed, group=lambda c: name_key(card_db.records[c]))
    if records is None:
        records = recognise_photos(card_db, emb, photo_set, detector, conf)
    else:  # recognised beforehand (an evaluation): in the photo set's order, every photo there
        by_file = {str(r.file): r for r in records}
        missing = [str(ph.path) for ph in photo_set.photos if str(ph.path) not in by_file]
        if missing:
            raise CardIDError(
                f"{len(missing)} photo(s) of {photos} were not recognised beforehand, e.g. {missing[0]}"
            )
        records = [by_file[str(ph.path)] for ph in photo_set.photos]
    said = [fit_printing_on_photos(card_db, emb, records, simulated)] if printing else []
    with progress(len(records), "fitting") as advance:
        stats = adapt_db(card_db, emb, records, [split.fold_of[r.card_id] for r in records], photos, advance)
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


def recognise_photos(
    card_db, emb, photo_set, detector: str = "classical", conf: float = 0.25
) -> list[PhotoRecord]:
    """Each labelled photo's record (cards with corners and the printing model's evidence, its
    outcome) with the model as it is, no adapter: the records `cardid eval photos` keeps."""
    from cardid.decision.match import MatchConfig
    from cardid.fit.outcomes import evaluate_photo_set
    from cardid.progress import progress
    from cardid.recognize import Recognizer, make_detector

    # the printing model's evidence is recorded for every printing set (printing="model")
    rec = Recognizer.open(emb, card_db, make_detector(detector, conf), MatchConfig(printing="model"))
    rec = rec.with_(adapter=None)
    with progress(len(photo_set), "finding cards") as advance:
        return evaluate_photo_set(rec, photo_set.rows(), advance)


def fit_printing_on_photos(card_db, emb, records: list[PhotoRecord], simulated: list | None = None) -> str:
    """The DB's printing model refitted on simulated views of its cards plus these photos' printing
    sets, stored with its fused calibration (as `eval photos --folds` fits each fold's).
    ``simulated``: those views' printing sets, made beforehand on this DB (else made here)."""
    from cardid.fit.calibrate import printing_sets_on_views, store_printing_model
    from cardid.fit.printing import fit_on_photos

    fused = (card_db.calibration or {}).get("fused")
    if not fused:
        return "printing model: not fitted (the DB has no fused calibration: run `cardid index calibrate`)"
    if simulated is None:
        simulated = printing_sets_on_views(card_db, emb, card_db.gallery(), cards=None)
    model = fit_on_photos(records, simulated)
    store_printing_model(card_db, model)
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
