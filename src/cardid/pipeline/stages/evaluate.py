"""Evaluation stages: real photos by card-disjoint folds (``evaluate``), and the demo's simulated
checks — crops of known and unknown cards (``recognition``), whole table photos (``photos``) and
same-art reprints (``printings``). Every figure a recipe reports comes from one of these."""

from __future__ import annotations

import shutil
from pathlib import Path

from pydantic import Field

from cardid.io import write_json_atomic
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
    """The held-out figures (mean ± sd over card-disjoint folds) of what would ship
    (:func:`cardid.eval.photos_report.shipped`: the report leads with the same), else the first pass's."""
    from cardid.eval.photos_report import shipped

    ph = report["sets"]["photos-dev"]
    what, fitted, _ = shipped(ph) or ("as first recognised", ph["folds"], None)
    return {
        "what": f"photos-dev, {len(fitted['per_fold'])} card-disjoint folds, {what}",
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
    metrics=("summary", "photos_csv", "limit"),
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
    from cardid.eval.simulated import recognise_simulated_crops

    summary = recognise_simulated_crops(
        ctx.path("export", "onnx"),
        ctx.path("calibrate", "db"),
        open_catalog(ctx),
        list(ctx.metric("db", "unknown") or []),
        ctx.dir,
        known=cfg.known,
        unknown=cfg.unknown,
        seed=ctx.recipe.seed,
    )
    figure = (
        f"{summary['known_correct']}/{summary['known']} known photos named, {summary['unknown_rejected']}/"
        f"{summary['unknown']} unknown cards rejected (report.html)"
    )
    return StageResult(figure=figure, outputs={"report": ctx.dir / "report.html"}, metrics=summary)


class PhotosStage(Settings):
    photos: int = Field(4, ge=2)  # the last one is an empty table


@stage(
    "photos",
    PhotosStage,
    needs=("calibrate", "db", "export", "catalog"),
    wants=("detector",),
    outputs=("photos",),
)
def photos_stage(ctx: StageContext, cfg: PhotosStage) -> StageResult:
    """Simulated photos of cards on a table (one not in the DB) and of an empty table, end to end."""
    from cardid.eval.simulated import recognise_simulated_photos

    detector = detector_for(ctx)
    n = recognise_simulated_photos(
        ctx.path("export", "onnx"),
        ctx.path("calibrate", "db"),
        open_catalog(ctx),
        detector,
        ctx.dir,
        photos=cfg.photos,
        seed=ctx.recipe.seed + 7,
    )
    finder = "classical" if detector == "classical" else "YOLO"
    empty = "no_card" if n["no_card_on_empty"] else f"{n['named_on_empty']} named"
    figure = (
        f"{cfg.photos} simulated photos: {n['found']}/{n['known'] + n['unknown']} cards found ({finder} finder), "
        f"{n['named']}/{n['known']} named, {n['rejected']} unknown rejected, {n['wrong']} wrong; empty table: {empty}"
    )
    return StageResult(
        figure=figure, outputs={"photos": ctx.dir}, metrics={"photos": cfg.photos, **n, "detector": finder}
    )


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
