"""Reprints that share their art, told apart by the bottom strip and by the collector number.

What `benchmarks/printed_numbers.py` and the demo's ``printings`` stage measure: every same-art
printing tied on purpose (:data:`TIE`), then resolved by each means in turn.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

from cardid.db.build import build_db
from cardid.decision import refine
from cardid.decision.decide import AMBIGUOUS, MATCH, Calibration, decide
from cardid.decision.match import MatchConfig, Matcher
from cardid.decision.printing import PrintingModel
from cardid.embed import Embedder
from cardid.fit.calibrate import printing_sets_on_views, synthetic_queries
from cardid.fit.printing import fit_printing_model
from cardid.printing.ocr import engine_info, tesseract_available
from cardid.synth.cards import synth_cards


def pct(xs, q) -> float | None:
    return round(float(np.percentile(xs, q)), 1) if len(xs) else None


#: fused score on inliers alone, wide margin: every same-art printing of the card ties with it,
#: so each photo of a reprinted card gives an ambiguous set to resolve (what the test suite does)
TIE = Calibration("fused", threshold=-math.inf, margin=0.5, fusion={"weights": [0, 0, 4.0, 0], "bias": 0})


def fit_on_other_catalog(emb: Embedder, work: Path, n: int, crop_width: int, seed: int) -> PrintingModel:
    """The printing model fitted as a DB's would be, on simulated views (at ``crop_width``) of another
    synthetic catalog than the one measured (same recipe, another seed), every same-art printing tied."""
    cat = synth_cards(work / "cat", n=n, seed=seed + 100, height=1024, reprint_fraction=0.4, overwrite=True)
    db = build_db(emb, cat, work / "db", overwrite=True, workers=2)
    db.save_meta(calibration={"fused": TIE.to_dict()})
    sets = printing_sets_on_views(db, emb, cat, cards=None, seed=seed + 100, widths=(crop_width,))
    return fit_printing_model(sets, source="simulated views of another synthetic catalog")


def evaluate_reprints(
    emb: Embedder,
    work: Path,
    n: int = 40,
    crop_width: int = 503,
    seed: int = 3,
    progress: Callable[[int], None] | None = None,
) -> dict:
    """Same-art reprints told apart: a synthetic catalog (``n`` cards at 1024 px, 40 % reprints that
    share art and name but not their number) in a DB built with ``emb`` under ``work``, one
    simulated photo (``crop_width`` px wide) of every printing, decided with every same-art
    printing tied (:data:`TIE`); each ambiguous set is resolved by the bottom strip (pixels), by
    the collector number (OCR), by both in turn (the rules: the number first, the strip where it
    said nothing), and by the printing model (what :meth:`Matcher.decide` does), fitted on another
    synthetic catalog (:func:`fit_on_other_catalog`)."""
    cat = synth_cards(work / "cat", n=n, seed=seed, height=1024, reprint_fraction=0.4, overwrite=True)
    db = build_db(emb, cat, work / "db", overwrite=True, workers=2)
    ids = sorted({c for r in cat if r.reprint_of for c in (r.id, r.reprint_of)})
    images, labels = synthetic_queries(cat, ids, seed=seed + 2, presets=("default",), crop_width=crop_width)
    strip = Matcher(db, emb, MatchConfig(read_numbers=False), calibration=TIE)
    number = Matcher(db, emb, MatchConfig(read_numbers=True), calibration=TIE)
    fitted = fit_on_other_catalog(emb, work / "fit", n, crop_width, seed)
    weighed = Matcher(db, emb, MatchConfig(read_numbers=True), calibration=TIE, printing_model=fitted)
    kinds = ("strip", "number", "both", "model")
    c = {"sets": 0, "number_illegible": 0, "number_no_member": 0}
    c |= {f"{k}_{o}": 0 for k in kinds for o in ("right", "wrong")}
    ocr_ms, rows = [], []
    for q, t in zip(strip.prepare(images), labels, strict=True):
        if progress:
            progress(1)
        raw = decide(strip.candidates(q), TIE)
        if raw.kind != AMBIGUOUS or t not in {x.card_id for x in raw.cards}:
            continue
        c["sets"] += 1
        by_strip = refine.resolve(strip, q, raw)
        by_number = refine.by_number(number, q, raw)
        both = refine.resolve(strip, q, by_number)  # what the rules do: the number, then the strip
        by_model = refine.printing(weighed, q, raw)  # the printing model, fitted on another catalog
        for tag, d in (("strip", by_strip), ("number", by_number), ("both", both), ("model", by_model)):
            c[f"{tag}_right"] += d.kind == MATCH and d.card_id == t
            c[f"{tag}_wrong"] += d.kind == MATCH and d.card_id != t
        p = by_number.printed or {}
        c["number_illegible"] += p.get("agrees") is None
        c["number_no_member"] += p.get("agrees") is False
        if p.get("ms"):
            ocr_ms.append(p["ms"])
        rows.append(
            {
                "truth": t,
                "set": [x.card_id for x in raw.cards],
                "strip": by_strip.card_id,
                "number": by_number.card_id,
                "model": by_model.card_id,
                "model_probability": by_model.probability,
                "printed": p,
            }
        )
    return {
        "ocr": tesseract_available(),
        "ocr_engine": engine_info(),
        "cards": len(cat),
        "reprinted_cards": len(ids),
        "crop_width": crop_width,
        **c,
        "printing_model": fitted.to_dict(),
        "ocr_ms_p50": pct(ocr_ms, 50),
        "ocr_ms_p95": pct(ocr_ms, 95),
        "per_set": rows,
    }
