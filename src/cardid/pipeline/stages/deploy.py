"""Deployment stages: export the student, build the reference DB with the exported artefact,
calibrate its decisions, learn from labelled real photos, and assemble the bundle.

A stage never edits an earlier stage's folder: calibration and adaptation work on a copy of the DB."""

from __future__ import annotations

import shutil
from pathlib import Path

from pydantic import Field

from cardid.errors import CardIDError
from cardid.pipeline.contract import StageContext, StageResult, stage
from cardid.pipeline.stages.common import Settings, detector_for, open_catalog


class ExportStage(Settings):
    formats: list[str] = Field(default_factory=lambda: ["onnx"])
    student: str | None = None  # which student (default: the first)
    calib_size: int = 64


@stage("export", ExportStage, needs=("students", "catalog"), outputs=("dir", "source", "onnx", "notices"))
def export_stage(ctx: StageContext, cfg: ExportStage) -> StageResult:
    """The student exported (ONNX fp32/fp16/int8 with parity against PyTorch; CoreML, Hailo)."""
    from cardid.export import export_model

    src = ctx.path("students", f"student:{cfg.student}" if cfg.student else "student")
    exp = export_model(
        src, ctx.dir, tuple(cfg.formats), catalog=open_catalog(ctx), calib_size=cfg.calib_size, log=ctx.log
    )
    out = Path(exp["dir"])
    outputs = {"dir": out, "source": src}
    figure = "exported"
    if "onnx" in exp:
        outputs["onnx"] = out / "model.onnx"
        parity = ", ".join(f"{p} R@1 {r['recall@1_export']:.3f}" for p, r in exp["onnx"].items())
        figure = f"ONNX, parity vs PyTorch (R@1 {exp['onnx']['fp32']['recall@1_source']:.3f}): {parity}"
    if (out / "NOTICES").is_dir():
        outputs["notices"] = out / "NOTICES"
    return StageResult(figure=figure, outputs=outputs, metrics={k: v for k, v in exp.items() if k != "dir"})


class DBStage(Settings):
    leave_out: float = Field(0.0, ge=0.0, lt=1.0)  # share of cards with unique art left out (unknown cards)
    dtype: str = "f32"


@stage("db", DBStage, needs=("export", "catalog"), outputs=("db",), metrics=("cards", "unknown"))
def db_stage(ctx: StageContext, cfg: DBStage) -> StageResult:
    """The reference DB, built with the exported (deployed) artefact."""
    from cardid.db.build import build_db
    from cardid.embed import load_embedder
    from cardid.progress import progress

    cat = open_catalog(ctx)
    ids = list(cat.ids)
    unknown: list[str] = []
    if cfg.leave_out:  # unknown cards show new art: leave out cards whose art no other printing shares
        arts = [getattr(cat[c], "art_id", None) or c for c in ids]
        unique = [c for c, a in zip(ids, arts, strict=True) if arts.count(a) == 1]
        unknown = unique[-max(1, round(len(ids) * cfg.leave_out)) :]
    known = [c for c in ids if c not in unknown]
    emb = load_embedder(ctx.path("export", "onnx"))
    subset = cat.subset(known) if unknown else cat
    with progress(2 * len(subset), "indexing") as advance:
        db = build_db(emb, subset, ctx.dir / "db", dtype=cfg.dtype, progress=advance)
    figure = (
        f"{len(db)} cards × {db.dim} ({cfg.dtype}), built with {db.meta['model'].get('format', 'the model')}"
    )
    if unknown:
        figure += f"; {len(unknown)} cards left out as unknown"
    return StageResult(
        figure=figure, outputs={"db": ctx.dir / "db"}, metrics={"cards": len(db), "unknown": unknown}
    )


def copy_db(src: Path, dst: Path) -> Path:
    """A copy of a DB folder to recalibrate or adapt, leaving the stage that built it as it was."""
    shutil.copytree(src, dst)
    return dst


def _db_input(ctx: StageContext) -> Path:
    kind = next(k for k in ("adapt", "calibrate", "db") if ctx.has(k))
    return ctx.path(kind, "db")


class CalibrateStage(Settings):
    cards: int = Field(300, ge=1)  # cards rendered as simulated views
    views: int = Field(1, ge=1)  # views per card
    target_precision: float = 0.95
    printing: bool = True  # also fit the printing model on views of cards with several printings
    backs: bool = False  # teach the DB a card back from a drawn one (a synthetic catalog's back)


@stage("calibrate", CalibrateStage, needs=("db", "catalog", "export"), outputs=("db",))
def calibrate_stage(ctx: StageContext, cfg: CalibrateStage) -> StageResult:
    """Decision thresholds calibrated on simulated views of the DB's cards."""
    from cardid.db.store import CardDB
    from cardid.embed import load_embedder
    from cardid.fit.calibrate import calibrate_on_views
    from cardid.progress import progress

    emb = load_embedder(ctx.path("export", "onnx"))
    db = CardDB.load(copy_db(ctx.path("db", "db"), ctx.dir / "db"), emb)
    cat = open_catalog(ctx)
    with progress(min(cfg.cards, len(db)) * cfg.views, "calibrating") as advance:
        cals = calibrate_on_views(
            db, emb, cat, cfg.cards, ctx.recipe.seed, cfg.target_precision, advance, cfg.printing, cfg.views
        )
    cal = cals.get("fused") or cals["embedding"]
    st = cal.stats
    if cfg.backs:
        import numpy as np

        from cardid.fit.backs import learn_backs
        from cardid.images import save_rgb
        from cardid.synth.objects import card_back

        ref = ctx.dir / "card-back.png"
        save_rgb(ref, card_back(np.random.default_rng(ctx.recipe.seed), 352, 252))
        ctx.log(learn_backs(ctx.path("export", "onnx"), ctx.dir / "db", images=[ref])["said"])
    return StageResult(
        figure=f"threshold {cal.threshold:.3f}: precision {st['precision']:.3f}, recall {st['recall']:.3f} on simulated views",
        outputs={"db": ctx.dir / "db"},
        metrics={k: v.to_dict() for k, v in cals.items()},
    )


class AdaptStage(Settings):
    photos: str  # labelled whole photos (file,card_id[,notes]): photos-dev.csv
    printing: bool = True  # also refit the printing model on the photos' printing sets
    backs: bool = True  # also learn the card back from the photos showing a front and a back


@stage(
    "adapt",
    AdaptStage,
    needs=("calibrate", "export"),
    wants=("detector", "evaluate"),
    external=lambda cfg: [Path(cfg.photos).parent],  # the CSV and the photos it names beside it
    outputs=("db",),
)
def adapt_stage(ctx: StageContext, cfg: AdaptStage) -> StageResult:
    """A query adapter (and the printing model) learned from labelled real photos."""
    from cardid.fit.photos import adapt_from_photos

    db_dir = copy_db(ctx.path("calibrate", "db"), ctx.dir / "db")
    det = detector_for(ctx)
    records = simulated = None
    ev = ctx.input("evaluate") if ctx.has("evaluate") else None
    if ev and ctx.metric("evaluate", "photos_csv") == str(cfg.photos) and not ctx.metric("evaluate", "limit"):
        # every one of these photos, recognised with this model: reused
        from cardid.eval.photos_report import read_photo_records

        records = read_photo_records(ctx.path("evaluate", "json"), "photos-dev")
    if ev and "simulated" in ev["outputs"]:
        from cardid.decision.printing import load_printing_sets  # made on the calibrate stage's DB too

        simulated = load_printing_sets(ctx.path("evaluate", "simulated"))
    said = adapt_from_photos(
        ctx.path("export", "onnx"),
        db_dir,
        cfg.photos,
        det,
        printing=cfg.printing,
        records=records,
        simulated=simulated,
    )
    if cfg.backs:
        from cardid.fit.backs import learn_backs

        backs = learn_backs(ctx.path("export", "onnx"), db_dir, cfg.photos, detector=det)
        said["said"].append(backs["said"])
        said["backs"] = {k: v for k, v in backs.items() if k != "said"}
    for line in said["said"]:
        ctx.log(line)
    return StageResult(figure=said["figure"], outputs={"db": db_dir}, metrics=said)


class BundleStage(Settings):
    printing: str = "auto"  # the decision settings served (MatchConfig.printing)
    conf: float = 0.25  # detector confidence


@stage(
    "bundle",
    BundleStage,
    needs=("export",),
    wants=("db", "calibrate", "adapt", "detector", "evaluate"),
    outputs=("bundle",),
)
def bundle_stage(ctx: StageContext, cfg: BundleStage) -> StageResult:
    """Model, DB, finder, decision settings, licences and the evaluation, every file hashed."""
    from cardid.bundle import write_bundle

    if not any(ctx.has(k) for k in ("db", "calibrate", "adapt")):
        raise CardIDError(f"stage {ctx.name!r} needs a db (or calibrate, adapt) stage before it")
    exp = ctx.input("export")["outputs"]
    evaluation = ctx.metric("evaluate", "summary", {}) if ctx.has("evaluate") else {}
    b = write_bundle(
        ctx.dir / ctx.recipe.name,
        ctx.path("export", "onnx"),
        _db_input(ctx),
        detector_for(ctx),
        cfg.conf,
        {"printing": cfg.printing},
        evaluation,
        ctx.path("export", "notices") if "notices" in exp else None,
        ctx.path("export", "source"),
        {"name": ctx.recipe.name, "stages": [s.name for s in ctx.recipe.stages]},
        overwrite=True,
    )
    size = sum(p.stat().st_size for p in b.root.rglob("*") if p.is_file()) / 2**20
    finder = "classical finder" if b.detector == "classical" else "YOLO-OBB ONNX finder"
    return StageResult(
        figure=f"{len(b.meta['files'])} files hashed, {size:.0f} MB, {finder}: cardid serve {b.root}",
        outputs={"bundle": b.root},
        metrics={"files": len(b.meta["files"]), "mb": round(size, 1)},
    )
