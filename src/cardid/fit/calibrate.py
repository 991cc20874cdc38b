"""Calibrate a DB's decisions from labelled queries: real photos (a CSV) or simulated camera views.

Both the embedding-only decision (what a device without verification runs) and the fused decision
are calibrated and stored in ``db.json`` under ``calibration.embedding`` / ``calibration.fused``.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np

from cardid.catalog.records import Catalog
from cardid.db.art import same_card_rows
from cardid.db.store import CardDB
from cardid.decision.decide import Calibration, decide
from cardid.decision.match import MatchConfig, Matcher
from cardid.decision.printing import PrintingModel, PrintingSet
from cardid.decision.refine import printing_set
from cardid.embed import Embedder
from cardid.errors import CardIDError
from cardid.fit.fusion import calibrate, check_target_precision
from cardid.fit.printing import fit_printing_model
from cardid.synth.photo import prepare_scan, render_crop
from cardid.synth.settings import PhotoSimConfig, photo_preset

#: Calibration views are rendered larger than training crops: the strip check needs the digits.
CALIBRATION_CROP_WIDTH = 360
#: ... and at the sizes real photos show cards (a listing photo: ~150 px wide; a close-up: 360+),
#: so thresholds fitted on simulated views transfer to small, soft photos too.
CALIBRATION_CROP_WIDTHS = (150, 220, CALIBRATION_CROP_WIDTH)
#: The printing model is fitted on views at the widths real photos show cards: photos-dev's crops
#: are 150-400 px wide, most of them 180-260 (`cardid eval photos`, by crop width).
PRINTING_CROP_WIDTHS = (150, 190, 230, 280, 360)


def synthetic_queries(
    catalog: Catalog,
    ids: Sequence[str],
    views: int = 1,
    seed: int = 0,
    presets: Sequence[str] = ("default",),
    crop_width: int | Sequence[int] = CALIBRATION_CROP_WIDTHS,
) -> tuple[list[np.ndarray], list[str]]:
    """Simulated camera crops of ``ids`` (deterministic per card and view), cycling through
    ``presets`` and crop widths: hard and small views keep the fused score from leaning on what
    only easy, large views show."""
    widths = [crop_width] if isinstance(crop_width, int) else list(crop_width)
    cfgs: list[PhotoSimConfig] = [
        photo_preset(p).model_copy(update={"crop_width": w}) for w in widths for p in presets
    ]
    images, labels = [], []
    for i, cid in enumerate(ids):
        scan = catalog.load_image(cid)
        for v in range(views):
            cfg = cfgs[(i * views + v) % len(cfgs)]
            rng = np.random.default_rng([seed, zlib.crc32(cid.encode()), v, 0xCA11B])
            images.append(render_crop(prepare_scan(scan, cfg), rng, cfg))
            labels.append(cid)
    return images, labels


def calibrate_db(
    db: CardDB,
    embedder: Embedder,
    images: Sequence[np.ndarray],
    card_ids: Sequence[str],
    target_precision: float = 0.95,
    config: MatchConfig = MatchConfig(),
    save: bool = True,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Calibration]:
    """Calibrate on labelled crops. Cards in the DB give a known trial and, with their card (and
    every printing of the same art) hidden, an unknown trial; cards not in the DB give unknown
    trials."""
    check_target_precision(target_precision)  # before any work
    if len(images) == 0:
        raise CardIDError("calibration needs at least one labelled query; the query set is empty")
    if len(images) != len(card_ids):
        raise CardIDError(f"{len(images)} images but {len(card_ids)} labels")
    matcher = Matcher(db, embedder, config, calibration=Calibration())
    known, unknown = [], []
    for q, cid in zip(matcher.prepare(images, progress), card_ids, strict=True):
        row = db.row_of.get(cid)
        if row is None:
            unknown.append(matcher.candidates(q))
        else:
            known.append((matcher.candidates(q), row))
            unknown.append(matcher.candidates(q, exclude=same_card_rows(db, row)))
    if not known:
        raise CardIDError("none of the calibration queries shows a card that is in the DB")
    result = {"embedding": calibrate(known, unknown, target_precision, mode="embedding")}
    if matcher.verifying:
        result["fused"] = calibrate(known, unknown, target_precision, mode="fused")
    if "fused" in result:  # thresholds recalibrated: the printing model fitted before still holds
        result["fused"].printing = ((db.calibration or {}).get("fused") or {}).get("printing")
    if save:
        db.save_meta(calibration={k: v.to_dict() for k, v in result.items()})
    return result


def calibrate_on_views(
    db: CardDB,
    embedder: Embedder,
    catalog: Catalog,
    cards: int = 300,
    seed: int = 0,
    target_precision: float = 0.95,
    progress: Callable[[int], None] | None = None,
    printing: bool = True,
    views: int = 1,
) -> dict[str, Calibration]:
    """Calibrate ``db`` on simulated camera views of up to ``cards`` of its cards (``views`` each),
    rendered from ``catalog``'s scans: what `index build` does unless told not to; ``printing``:
    then fit its printing model (:func:`fit_printing`) on views of cards with several printings."""
    import random

    check_target_precision(target_precision)
    if cards < 1:
        raise CardIDError(f"need at least 1 card to calibrate on, got {cards}")
    ids = [c for c in db.ids if c in catalog]
    if not ids:
        raise CardIDError(f"none of the DB's cards is in the catalog {catalog.root}")
    ids = random.Random(seed).sample(ids, min(cards, len(ids)))
    images, labels = synthetic_queries(catalog, ids, views=views, seed=seed)
    result = calibrate_db(db, embedder, images, labels, target_precision, progress=progress)
    if printing and "fused" in result:
        model, _ = fit_printing(db, embedder, catalog, cards, seed)
        if model is not None:
            result["fused"].printing = model.to_dict()
    return result


def printing_sets_on_views(
    db: CardDB,
    embedder: Embedder,
    catalog: Catalog,
    cards: int | None = 300,
    seed: int = 0,
    widths: Sequence[int] = PRINTING_CROP_WIDTHS,
    config: MatchConfig = MatchConfig(),
    progress: Callable[[int], None] | None = None,
) -> list[PrintingSet]:
    """Printing sets (:mod:`cardid.decision.printing`) with their truth, from one simulated view of
    each of up to ``cards`` cards that have another printing in the DB, rendered at real photos'
    widths and decided with the DB's fused calibration, its threshold aside (``cards=None``: every
    such card): what the printing model is fitted on."""
    import random

    ids = [c for c in db.ids if c in catalog and len(db.printings_of(db.row_of[c])) > 1]
    ids = random.Random(seed).sample(ids, len(ids) if cards is None else min(cards, len(ids)))
    if not ids:
        return []
    images, labels = synthetic_queries(catalog, ids, seed=seed + 1, crop_width=widths)
    matcher = Matcher(db, embedder, config)
    # every view's best card counts, named or not: its printings' evidence is what is fitted
    opened = replace(matcher.calibration, threshold=-math.inf)
    sets = []
    for q, cid in zip(matcher.prepare(images, progress), labels, strict=True):
        found = printing_set(matcher, q, decide(matcher.candidates(q), opened))
        if found is not None:
            sets.append(replace(found[0], truth=cid))
    return sets


def fit_printing(
    db: CardDB,
    embedder: Embedder,
    catalog: Catalog,
    cards: int | None = 300,
    seed: int = 0,
    max_wrong: float = 0.01,
    save: bool = True,
    progress: Callable[[int], None] | None = None,
) -> tuple[PrintingModel | None, list[PrintingSet]]:
    """Fit the DB's printing model on simulated views (:func:`printing_sets_on_views`) and store it
    with its fused calibration. None (and the hand-set defaults stay) when the DB has no card with
    two printings, or no fused calibration to decide the card with."""
    fused = (db.calibration or {}).get("fused")
    if not fused:
        return None, []
    sets = printing_sets_on_views(db, embedder, catalog, cards, seed, progress=progress)
    try:
        model = fit_printing_model(
            sets, max_wrong, source="simulated views", widths=list(PRINTING_CROP_WIDTHS)
        )
    except CardIDError:  # no set holds its truth among two printings: nothing to fit on
        return None, sets
    if save:
        store_printing_model(db, model)
    return model, sets


def store_printing_model(db: CardDB, model: PrintingModel) -> None:
    """The one writer of a DB's printing model: stored with its fused calibration in ``db.json``
    (fitted on simulated views here, on labelled photos by :mod:`cardid.fit.photos`)."""
    db.save_meta(
        calibration={**db.calibration, "fused": {**db.calibration["fused"], "printing": model.to_dict()}}
    )
