"""Simulated checks of a deployed model and DB, as the demo runs them: fresh camera crops of known
cards and of cards left out of the DB (each named or rejected), and whole photos of cards laid out
on a table, one not in the DB, and of an empty table (each card found, named or rejected). Each
writes its photos, pictures and records into a folder and returns what it counted."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from cardid.io import write_bytes_atomic, write_json_atomic


def recognise_simulated_crops(
    model: str | Path,
    db_dir: str | Path,
    catalog,
    unknown_ids: list[str],
    out: Path,
    known: int = 6,
    unknown: int = 3,
    seed: int = 0,
) -> dict:
    """``known`` cards of the DB and ``unknown`` left out of it, one simulated crop each, recognised
    as crops: ``queries/``, ``show/`` (a picture per decision), ``results.jsonl``, ``report.html``
    and ``summary.json`` in ``out``. Returns the summary (known named, unknown rejected)."""
    from cardid.catalog.ids import card_file_stem
    from cardid.db.store import CardDB
    from cardid.decision.decide import AMBIGUOUS, BACK, MATCH, UNKNOWN
    from cardid.embed import load_embedder
    from cardid.eval.real import render_html
    from cardid.fit.calibrate import synthetic_queries
    from cardid.images import save_rgb
    from cardid.recognize import Recognizer, prepare_pictures_dir, recognize_files, save_decision_png

    emb = load_embedder(model)
    db = CardDB.load(db_dir, emb)
    known_ids = [c for c in catalog.ids if c in db.row_of]
    rng = np.random.default_rng(seed)
    shown = [str(c) for c in rng.choice(known_ids, min(known, len(known_ids)), replace=False)]
    shown += unknown_ids[:unknown]
    q_images, q_labels = synthetic_queries(catalog, shown, seed=seed + 1, presets=("default",))
    paths = []
    for i, (im, cid) in enumerate(zip(q_images, q_labels, strict=True)):
        paths.append(out / "queries" / f"{i:02d}_{card_file_stem(cid)}.png")
        save_rgb(paths[-1], im)
    rec = Recognizer.open(emb, db)
    # one card per crop: the flat per-card record (image, ms, decision, top…)
    results = [
        (
            {"image": str(it.path), "ms": it.result.ms, **it.result.cards[0].to_json()},
            it.result.cards[0],
            it.image,
        )
        for it in recognize_files(rec, paths)
    ]
    rows = []
    prepare_pictures_dir(out / "show")  # `cardid recognize <this folder>` skips the pictures
    for (r, card, im), truth in zip(results, q_labels, strict=True):
        d = card.decision
        save_decision_png(out / "show" / f"{Path(r['image']).stem}.png", im, r, catalog, truth=truth)
        is_known = truth in db.row_of
        correct = any(c.card_id == truth for c in d.cards) if is_known else d.kind == UNKNOWN
        top = [
            {"card_id": c.card_id, "cos": round(c.cos, 4), "inliers": c.inliers, "score": round(c.score, 4)}
            for c in d.candidates[: card.top]
        ]
        rows.append(
            {
                "file": r["image"],
                "card_id": truth if is_known else f"{truth} (not in DB)",
                "decision": d.kind,
                "correct": correct,
                "chosen": [c.card_id for c in d.cards],
                "top": top,
            }
        )
    write_bytes_atomic(out / "results.jsonl", "".join(json.dumps(r) + "\n" for r, _, _ in results).encode())
    in_db = [c in db.row_of for c in q_labels]
    summary = {
        "db_cards": len(db),
        "known": sum(in_db),
        "known_correct": sum(r["correct"] for r, k in zip(rows, in_db, strict=True) if k),
        "unknown": len(q_labels) - sum(in_db),
        "unknown_rejected": sum(r["correct"] for r, k in zip(rows, in_db, strict=True) if not k),
        "calibration": db.calibration,
    }
    report = {
        "model": str(model),
        "model_identity": emb.identity,
        "gallery": len(db),
        "queries": len(rows),
        "stages": {},
        "decisions": {
            "match_correct": sum(r["decision"] == MATCH and r["correct"] for r in rows),
            "match_wrong": sum(r["decision"] == MATCH and not r["correct"] for r in rows),
            "ambiguous": sum(r["decision"] == AMBIGUOUS for r in rows),
            "unknown": sum(r["decision"] == UNKNOWN for r in rows),
            "back": sum(r["decision"] == BACK for r in rows),
        },
        "per_query": rows,
    }
    write_bytes_atomic(out / "report.html", render_html(report, catalog).encode())
    write_json_atomic(out / "summary.json", summary)
    return summary


def overlapping_card(corners: np.ndarray, scene, ids: list[str]) -> str | None:
    """The simulated card a detection outlines: the one its box overlaps most (IoU ≥ 0.5), or None."""
    from cardid.detect.geometry import box_iou, corners_box

    def overlap(c) -> float:
        return box_iou(corners_box(corners), corners_box(c.corners))

    best = max(scene.cards, key=overlap, default=None)
    return ids[best.index] if best is not None and overlap(best) >= 0.5 else None


def recognise_simulated_photos(
    model: str | Path, db_dir: str | Path, catalog, detector, out: Path, photos: int = 4, seed: int = 0
) -> dict:
    """``photos`` simulated photos (2–3 known cards and one left out of the DB on a table; the last
    an empty table) recognised whole with ``detector``: each photo, its annotated picture and
    ``results.jsonl`` in ``out``. Returns the counts: cards found, named, rejected, wrong, and what
    the empty table gave."""
    from cardid.db.store import CardDB
    from cardid.decision.decide import MATCH, UNKNOWN
    from cardid.embed import load_embedder
    from cardid.images import save_rgb
    from cardid.recognize import Recognizer, annotate
    from cardid.synth.photo import prepare_scan, render_scene
    from cardid.synth.settings import photo_preset

    rng = np.random.default_rng(seed)
    db = CardDB.load(db_dir, load_embedder(model))
    known = [c for c in catalog.ids if c in db.row_of]
    unknown = [c for c in catalog.ids if c not in db.row_of]
    preset = photo_preset("light")
    rec = Recognizer.open(model, db, detector)
    n = dict.fromkeys(("found", "named", "wrong", "rejected", "known", "unknown"), 0)
    no_card_on_empty, named_on_empty, lines = None, 0, []
    for i in range(photos):
        empty = i == photos - 1
        ids = (
            []
            if empty
            else [str(c) for c in rng.choice(known, 2 + i % 2, replace=False)] + unknown[i : i + 1]
        )
        scans = [
            prepare_scan(catalog.load_image(c), preset.model_copy(update={"crop_width": 360})) for c in ids
        ]
        scene = render_scene(scans, rng, (900, 900), "table", preset)  # laid out apart on a table
        r = rec.recognize_photo(scene.image)
        record = r.to_json()
        save_rgb(out / f"photo_{i}.jpg", scene.image)
        save_rgb(out / f"photo_{i}_annotated.png", annotate(scene.image, record))
        lines.append(json.dumps({"image": f"photo_{i}.jpg", **record}))
        if empty:
            no_card_on_empty = r.no_card
            named_on_empty = sum(c.decision.kind == MATCH for c in r.cards)
            continue
        n["known"] += sum(c in db.row_of for c in ids)
        n["unknown"] += sum(c not in db.row_of for c in ids)
        for c in r.cards:  # which simulated card is this detection? the one it overlaps most
            truth = overlapping_card(np.array(c.corners), scene, ids)
            if truth is None:
                continue
            n["found"] += 1
            named_id = c.decision.card_id
            if truth in db.row_of:
                n["named"] += named_id == truth
                n["wrong"] += named_id is not None and named_id != truth
            else:
                n["rejected"] += c.decision.kind == UNKNOWN
                n["wrong"] += c.decision.kind == MATCH
    write_bytes_atomic(out / "results.jsonl", ("\n".join(lines) + "\n").encode())
    return {**n, "no_card_on_empty": no_card_on_empty, "named_on_empty": named_on_empty}
