"""``cardid eval photos``: whole real photos → decisions, as a user would get them.

The gallery is the real scans; the DB is built with the model under test and calibrated on
*simulated* views only. Each photo of ``photos-dev.csv`` (one card per photo, not cropped: raw
cards, sleeves, top-loaders, slabs, front+back listings) goes through the finder, rectification,
embedding, verification and the decision, exactly as `cardid recognize` runs them; the dev crops
(``queries-dev.csv``) go through the same path. Per photo the outcome is the best match in it:

- ``correct``: the true card is named (a `match`);
- ``wrong``: some other card is named (the error that matters: a confident wrong name);
- ``ambiguous``: the truth is in an ambiguous set (`ambiguous_other`: it is not);
- ``unknown``: cards were found, none named; ``no_card``: nothing found and the fallback named nothing.

Reported: Recall@1 end to end, the wrong-match rate at the operating point, the `no_card` rate,
how often the whole-image fallback was needed, ms per photo, a breakdown by the CSV's notes,
how the simulated-view thresholds transfer (precision and recall of the fused score at the
calibrated threshold, and the threshold the real photos would need), and an HTML page with every
failure beside its true card.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from cardid.data.photoset import PhotoSet, load_photo_set
from cardid.decision.match import MatchConfig
from cardid.decision.printing import save_printing_sets
from cardid.errors import CardIDError
from cardid.eval.photos_report import render_html
from cardid.eval.real import build_real_db
from cardid.fit.outcomes import evaluate_photo_set, summarise
from cardid.fit.records import PhotoRecord, records_json
from cardid.fit.refit import (
    adapted_by_fold,
    fit_printing_folds,
    fit_strip_margin,
    fold_figures,
    printing_split,
)
from cardid.io import write_bytes_atomic, write_json_atomic
from cardid.recognize import Recognizer, make_detector

#: the simulated printing sets an evaluation fitted its folds' printing models on (full precision)
SIMULATED_SETS = "printing_sets_simulated.json"


def threshold_transfer(per: Sequence[PhotoRecord], calibrated: float) -> dict:
    """How the threshold fitted on simulated views does on the real photos: precision/recall of
    "the best card's fused score ≥ t means its top candidate is right", at the calibrated t and at
    the t the real photos would need for 99 % precision."""
    pairs = []
    for p in per:
        cards = [c for c in p.cards if c.top]
        if cards:
            best = max(cards, key=lambda c: c.top[0].score).top[0]
            pairs.append((best.score, best.card_id == p.card_id))
    if not pairs:
        return {}
    s = np.array([x for x, _ in pairs])
    ok = np.array([y for _, y in pairs])

    def at(t: float) -> dict:
        acc = s >= t
        return {
            "threshold": round(float(t), 4),
            "precision": float(ok[acc].mean()) if acc.any() else 1.0,
            "recall": float((ok & acc).sum() / len(per)),
        }

    order = np.argsort(-s)
    prec = np.cumsum(ok[order]) / np.arange(1, len(order) + 1)
    good = np.flatnonzero(prec >= 0.99)
    t99 = float(s[order][good[-1]]) if len(good) else float(s.max())
    return {"calibrated": at(calibrated), "real_99_precision": at(t99)}


def evaluate_photos(
    realdata: str | Path,
    model: str | Path,
    out: str | Path,
    detector: str = "classical",
    calib_cards: int = 300,
    limit: int | None = None,
    fallback: bool = True,
    conf: float = 0.25,
    progress: Callable[[int], None] | None = None,
    folds: int | None = None,
    fold_seed: int = 0,
    printing: str = "model",
    adapter: bool = False,
    db_dir: str | Path | None = None,
) -> dict:
    """``folds``: also report photos-dev in that many card-disjoint folds (every printing of a card
    name in one fold, :mod:`cardid.fit.folds`): each fold's figures on its own cards, and their
    spread, as decided with what simulated views fitted; then the printing model refitted on the
    simulated sets plus the other folds' real photos, measured on each fold's own cards
    (``printing="model"``), or the strip margin fitted so (``printing="rules"``: the printing decided
    by the rules the model replaced, to compare the two on the same folds). ``adapter`` (with
    ``folds``): photos-dev again, each fold's photos with a query adapter fitted on the other folds'
    photos (:mod:`cardid.fit.adapter`; λ on their own inner folds), and the printing model refitted on
    those records likewise. ``db_dir``: a DB already built with ``model`` and calibrated, evaluated
    as it is (read only) instead of one built and calibrated here."""
    from cardid.catalog.records import name_key
    from cardid.fit.folds import card_folds

    realdata, out = Path(realdata), Path(out)
    config = MatchConfig(printing=printing)  # a bad value said before any work
    photos = load_photo_set(realdata / "photos-dev.csv")
    dev = load_photo_set(realdata / "queries-dev.csv") if (realdata / "queries-dev.csv").is_file() else None
    if adapter and not folds:
        raise CardIDError("an adapter is fitted on other folds' photos: give --folds with --adapter")
    if folds:
        card_folds(photos, folds, fold_seed)  # too few cards: said before the DB is built, not after
    db_path = Path(db_dir) if db_dir is not None else None
    catalog, emb, db, cals, build_s, simulated = build_real_db(realdata, model, out, calib_cards, db_path)
    for s_ in (photos, dev):
        if s_ is not None:
            s_.require_cards(catalog, f"the gallery of {realdata}")

    def name_of(cid: str) -> str | None:
        return name_key(catalog[cid]) if cid in catalog else None

    split = card_folds(photos, folds, fold_seed, group=name_of) if folds else None
    rec = Recognizer.open(emb, db, make_detector(detector, conf), config, fallback=fallback)
    sets: dict[str, tuple[Recognizer, PhotoSet]] = {"photos-dev": (rec, photos.sample(limit))}
    if dev is not None:  # crops: recognised as crops (no finder)
        sets["queries-dev"] = (Recognizer(rec.matcher), dev)
    report: dict = {
        "model": str(model),
        "model_identity": emb.identity,
        "detector": str(detector),
        "fallback": fallback,
        "gallery": len(db),
        "db_build_s": round(build_s, 1),
        "calibration": {k: v.to_dict() for k, v in cals.items()},
        "printing": printing,
        # the simulated printing sets the DB's printing model was fitted on (and the folds' models)
        "printing_sets_simulated": [{"truth": x.truth, **x.to_dict()} for x in simulated],
        "sets": {},
    }
    threshold = rec.matcher.calibration.threshold
    memos: dict = {}  # path → Memo: photos-dev's first pass, reused by the adapter's
    for name, (recognizer, photo_set) in sets.items():
        reuse = memos if adapter and name == "photos-dev" else None
        per = evaluate_photo_set(recognizer, photo_set.rows(), progress, reuse)
        groups = sorted({g for p in per for g in p.groups})
        report["sets"][name] = {
            **summarise(per),
            "printing": printing_split(per, name_of),
            "by_notes": {g: summarise([p for p in per if g in p.groups]) for g in groups},
            "thresholds": threshold_transfer(per, threshold),
            "per_photo": records_json(per),
        }
        if split is not None and name == "photos-dev":
            report["sets"][name]["folds"] = fold_figures(per, split, name_of)
            if printing == "rules":
                report["sets"][name]["folds"]["strip_margin_fitted"] = fit_strip_margin(per, split)
            else:
                report["sets"][name]["folds"]["printing_model_fitted"] = fit_printing_folds(
                    per, split, simulated, name_of
                )
            if adapter:
                report["sets"][name]["adapter"] = adapted_by_fold(
                    recognizer, db, emb, per, photo_set, split, simulated, name_of, printing, progress, memos
                )
    write_json_atomic(out / "report.json", report)
    write_bytes_atomic(out / "report.html", render_html(report, catalog).encode())
    save_printing_sets(out / SIMULATED_SETS, simulated)  # for an adapter fitted on this DB next
    return report
