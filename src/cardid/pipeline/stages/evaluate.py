"""Evaluation stages: real photos by card-disjoint folds (``evaluate``), and the demo's simulated
checks — crops of known and unknown cards (``recognition``), whole table photos (``photos``) and
same-art reprints (``printings``). Every figure a recipe reports comes from one of these."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from pydantic import Field

from cardid.io import write_bytes_atomic, write_json_atomic
from cardid.pipeline.contract import StageContext, StageResult, stage
from cardid.pipeline.stages.common import Settings, detector_for, open_catalog

FIGURES = ("card_named", "exact_printing", "wrong_printing", "wrong_card", "ambiguous_with_truth")


class EvaluateStage(Settings):
    realdata: str = "{realdata}"  # gallery/, gallery.csv, photos-dev.csv (+ queries-dev.csv)
    folds: int = Field(5, ge=2)
    adapter: bool = True  # also a query adapter fitted on the other folds' photos
    limit: int | None = None  # photos-dev: only the first N (smoke runs)


def _realdata(cfg: EvaluateStage) -> list[Path]:
    root = Path(cfg.realdata)
    return [root / n for n in ("gallery", "gallery.csv", "photos-dev.csv", "photos-dev", "queries-dev.csv")]


def fold_summary(report: dict) -> dict:
    """The held-out figures (mean ± sd over card-disjoint folds) of the most complete setting the
    report has: adapter + printing model fitted on the other folds, else the printing model alone."""
    ph = report["sets"]["photos-dev"]
    base = ph.get("adapter", {}).get("folds") or ph["folds"]
    fitted = base.get("printing_model_fitted") or base
    what = "adapter + printing model" if "adapter" in ph else "printing model"
    return {
        "what": f"photos-dev, {len(fitted['per_fold'])} card-disjoint folds, {what} fitted on the other folds",
        "mean": {k: round(fitted["mean"][k], 4) for k in FIGURES},
        "sd": {k: round(fitted["sd"][k], 4) for k in FIGURES},
        "ms_p50": ph["ms_p50"],
        "photos": ph["photos"],
    }


@stage(
    "evaluate",
    EvaluateStage,
    needs=("calibrate", "export"),
    wants=("detector",),
    external=_realdata,
    outputs=("report", "json", "simulated"),
)
def evaluate_stage(ctx: StageContext, cfg: EvaluateStage) -> StageResult:
    """Whole real photos by card-disjoint folds (what is fitted on photos, fitted on other cards),
    recognised with the DB the ``calibrate`` stage made: the one the bundle ships."""
    from cardid.errors import CardIDError
    from cardid.eval.photos import SIMULATED_SETS, evaluate_photos
    from cardid.progress import progress

    if not (Path(cfg.realdata) / "photos-dev.csv").is_file():  # said before any work
        raise CardIDError(f"stage {ctx.name!r}: no labelled photos at {cfg.realdata} (photos-dev.csv)")
    from cardid.data.photoset import load_photo_set

    root = Path(cfg.realdata)
    n = len(load_photo_set(root / "photos-dev.csv").sample(cfg.limit))
    dev = len(load_photo_set(root / "queries-dev.csv")) if (root / "queries-dev.csv").is_file() else 0
    with progress(n * (2 if cfg.adapter else 1) + dev, "evaluating photos") as advance:
        report = evaluate_photos(
            cfg.realdata,
            ctx.path("export", "onnx"),
            ctx.dir,
            detector=detector_for(ctx),
            limit=cfg.limit,
            progress=advance,
            folds=cfg.folds,
            adapter=cfg.adapter,
            db_dir=ctx.path("calibrate", "db"),
        )
    s = fold_summary(report)
    m, sd = s["mean"], s["sd"]
    figure = (
        f"card named {m['card_named']:.3f} ± {sd['card_named']:.3f}, exact printing {m['exact_printing']:.3f} "
        f"± {sd['exact_printing']:.3f}, wrong printing {100 * m['wrong_printing']:.1f} %, p50 {s['ms_p50']:.0f} ms"
    )
    metrics = {"summary": s, "photos_csv": str(root / "photos-dev.csv"), "limit": cfg.limit}
    outputs = {
        "report": ctx.dir / "report.html",
        "json": ctx.dir / "report.json",
        "simulated": ctx.dir / SIMULATED_SETS,  # printing sets on the calibrate stage's DB (for adapt)
    }
    return StageResult(figure=figure, outputs=outputs, metrics=metrics)


class RecognitionStage(Settings):
    known: int = Field(6, ge=1)  # known cards photographed
    unknown: int = Field(3, ge=0)  # cards left out of the DB photographed


@stage("recognition", RecognitionStage, needs=("calibrate", "db", "export", "catalog"), outputs=("report",))
def recognition_stage(ctx: StageContext, cfg: RecognitionStage) -> StageResult:
    """Fresh simulated photos of known and left-out cards recognised as crops (report.html)."""
    from cardid.catalog.ids import card_file_stem
    from cardid.db.store import CardDB
    from cardid.embed import load_embedder
    from cardid.eval.real import render_html
    from cardid.fit.calibrate import synthetic_queries
    from cardid.images import save_rgb
    from cardid.recognize import Recognizer, prepare_pictures_dir, recognize_files, save_decision_png

    cat = open_catalog(ctx)
    emb = load_embedder(ctx.path("export", "onnx"))
    db = CardDB.load(ctx.path("calibrate", "db"), emb)
    known_ids = [c for c in cat.ids if c in db.row_of]
    unknown_ids = list(ctx.input("db")["metrics"].get("unknown") or [])
    rng = np.random.default_rng(ctx.recipe.seed)
    shown = [str(c) for c in rng.choice(known_ids, min(cfg.known, len(known_ids)), replace=False)]
    shown += unknown_ids[: cfg.unknown]
    q_images, q_labels = synthetic_queries(cat, shown, seed=ctx.recipe.seed + 1, presets=("default",))
    paths = []
    for i, (im, cid) in enumerate(zip(q_images, q_labels, strict=True)):
        paths.append(ctx.dir / "queries" / f"{i:02d}_{card_file_stem(cid)}.png")
        save_rgb(paths[-1], im)
    rec = Recognizer.open(emb, db)
    # one card per crop: the flat per-card record (image, ms, decision, top…)
    results = [
        (
            {"image": str(it.path), "ms": it.result.ms, **it.result.cards[0].to_json()},
            it.result.decisions[0],
            it.image,
        )
        for it in recognize_files(rec, paths)
    ]
    rows = []
    prepare_pictures_dir(ctx.dir / "show")  # `cardid recognize <stage dir>` skips the pictures
    for (r, d, im), truth in zip(results, q_labels, strict=True):
        save_decision_png(ctx.dir / "show" / f"{Path(r['image']).stem}.png", im, r, cat, truth=truth)
        known = truth in db.row_of
        correct = any(c.card_id == truth for c in d.cards) if known else d.kind == "unknown"
        top = [
            {
                "card_id": c["card_id"],
                "cos": c["similarity"],
                "inliers": c.get("inliers"),
                "score": c["score"],
            }
            for c in r["top"]
        ]
        rows.append(
            {
                "file": r["image"],
                "card_id": truth if known else f"{truth} (not in DB)",
                "decision": d.kind,
                "correct": correct,
                "chosen": [c.card_id for c in d.cards],
                "top": top,
            }
        )
    write_bytes_atomic(
        ctx.dir / "results.jsonl", "".join(json.dumps(r) + "\n" for r, _, _ in results).encode()
    )
    is_known = [c in db.row_of for c in q_labels]
    summary = {
        "db_cards": len(db),
        "known": sum(is_known),
        "known_correct": sum(r["correct"] for r, k in zip(rows, is_known, strict=True) if k),
        "unknown": len(q_labels) - sum(is_known),
        "unknown_rejected": sum(r["correct"] for r, k in zip(rows, is_known, strict=True) if not k),
        "calibration": db.calibration,
    }
    report = {
        "model": str(ctx.path("export", "onnx")),
        "model_identity": emb.identity,
        "gallery": len(db),
        "queries": len(rows),
        "stages": {},
        "decisions": {
            "match_correct": sum(r["decision"] == "match" and r["correct"] for r in rows),
            "match_wrong": sum(r["decision"] == "match" and not r["correct"] for r in rows),
            "ambiguous": sum(r["decision"] == "ambiguous" for r in rows),
            "unknown": sum(r["decision"] == "unknown" for r in rows),
        },
        "per_query": rows,
    }
    write_bytes_atomic(ctx.dir / "report.html", render_html(report, cat).encode())
    write_json_atomic(ctx.dir / "summary.json", summary)
    figure = (
        f"{summary['known_correct']}/{summary['known']} known photos named, {summary['unknown_rejected']}/"
        f"{summary['unknown']} unknown cards rejected (report.html)"
    )
    return StageResult(figure=figure, outputs={"report": ctx.dir / "report.html"}, metrics=summary)


class PhotosStage(Settings):
    photos: int = Field(4, ge=2)  # the last one is an empty table


def overlapping_card(corners: np.ndarray, scene, ids: list[str]) -> str | None:
    from cardid.detect.geometry import box_iou, corners_box

    def overlap(c) -> float:
        return box_iou(corners_box(corners), corners_box(c.corners))

    best = max(scene.cards, key=overlap, default=None)
    return ids[best.index] if best is not None and overlap(best) >= 0.5 else None


@stage(
    "photos",
    PhotosStage,
    needs=("calibrate", "db", "export", "catalog"),
    wants=("detector",),
    outputs=("photos",),
)
def photos_stage(ctx: StageContext, cfg: PhotosStage) -> StageResult:
    """Simulated photos of cards on a table (one not in the DB) and of an empty table, end to end."""
    from cardid.db.store import CardDB
    from cardid.embed import load_embedder
    from cardid.images import save_rgb
    from cardid.recognize import Recognizer, annotate
    from cardid.synth.photo import prepare_scan, render_scene
    from cardid.synth.settings import photo_preset

    cat = open_catalog(ctx)
    rng = np.random.default_rng(ctx.recipe.seed + 7)
    model = ctx.path("export", "onnx")
    db = CardDB.load(ctx.path("calibrate", "db"), load_embedder(model))
    known = [c for c in cat.ids if c in db.row_of]
    unknown = [c for c in cat.ids if c not in db.row_of]
    preset = photo_preset("light")
    detector = detector_for(ctx)
    rec = Recognizer.open(model, db, detector)
    n = dict.fromkeys(("found", "named", "wrong", "rejected", "known", "unknown"), 0)
    no_card_on_empty, named_on_empty, lines = None, 0, []
    for i in range(cfg.photos):
        empty = i == cfg.photos - 1
        ids = (
            []
            if empty
            else [str(c) for c in rng.choice(known, 2 + i % 2, replace=False)] + unknown[i : i + 1]
        )
        scans = [prepare_scan(cat.load_image(c), preset.model_copy(update={"crop_width": 360})) for c in ids]
        scene = render_scene(scans, rng, (900, 900), "table", preset)  # laid out apart on a table
        r = rec.recognize_photo(scene.image)
        record = r.to_json()
        save_rgb(ctx.dir / f"photo_{i}.jpg", scene.image)
        save_rgb(ctx.dir / f"photo_{i}_annotated.png", annotate(scene.image, record))
        lines.append(json.dumps({"image": f"photo_{i}.jpg", **record}))
        if empty:
            no_card_on_empty = r.no_card
            named_on_empty = sum(c.decision.kind == "match" for c in r.cards)
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
                n["rejected"] += c.decision.kind == "unknown"
                n["wrong"] += c.decision.kind == "match"
    write_bytes_atomic(ctx.dir / "results.jsonl", ("\n".join(lines) + "\n").encode())
    finder = "classical" if detector == "classical" else "YOLO"
    empty = "no_card" if no_card_on_empty else f"{named_on_empty} named"
    figure = (
        f"{cfg.photos} simulated photos: {n['found']}/{n['known'] + n['unknown']} cards found ({finder} finder), "
        f"{n['named']}/{n['known']} named, {n['rejected']} unknown rejected, {n['wrong']} wrong; empty table: {empty}"
    )
    metrics = {
        "photos": cfg.photos,
        **n,
        "no_card_on_empty": no_card_on_empty,
        "named_on_empty": named_on_empty,
        "detector": finder,
    }
    return StageResult(figure=figure, outputs={"photos": ctx.dir}, metrics=metrics)


class PrintingsStage(Settings):
    sets: int = Field(16, ge=2)


@stage("printings", PrintingsStage, needs=("export",), outputs=("report",))
def printings_stage(ctx: StageContext, cfg: PrintingsStage) -> StageResult:
    """Same-art reprints (synthetic, 1024 px) told apart by strip, number and the printing model."""
    from cardid.embed import load_embedder
    from cardid.eval.printings import evaluate_reprints

    shutil.rmtree(ctx.dir / "work", ignore_errors=True)
    r = evaluate_reprints(
        load_embedder(ctx.path("export", "onnx")), ctx.dir / "work", n=cfg.sets, seed=ctx.recipe.seed + 3
    )
    per = r.pop("per_set")
    write_json_atomic(ctx.dir / "report.json", {**r, "per_set": per})
    number = (
        f"by the number {r['number_right']} right, {r['number_wrong']} wrong (OCR {r['ocr_ms_p50']} ms p50)"
        if r["ocr"]
        else "numbers not read: Tesseract is not installed (pip install 'cardid[ocr]')"
    )
    figure = (
        f"{r['sets']} photos of same-art reprints: by the strip {r['strip_right']} right, {r['strip_wrong']} wrong; "
        f"{number}; by the printing model {r['model_right']} right, {r['model_wrong']} wrong"
    )
    return StageResult(figure=figure, outputs={"report": ctx.dir / "report.json"}, metrics=r)
