"""``cardid train``: the teacher, the card detector and frozen pretrained embedders."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from cardid.config import load_config
from cardid.sagemaker import training_defaults

app = typer.Typer(help="Train models.", no_args_is_help=True)
out = Console()


@app.command("teacher")
def teacher_cmd(
    config: Path | None = typer.Option(None, help="YAML with TeacherConfig fields (see configs/)."),
    preset: str = typer.Option("vitl16", help="Starting point below the YAML: vitl16 (the spec) or tiny."),
    data: str | None = typer.Option(None, help="A catalog (online synthesis) or a dataset directory."),
    val: str | None = typer.Option(
        None, help="Queries: a CSV of real photos or a dataset (default: val views)."
    ),
    out_dir: str | None = typer.Option(None, "--out", help="Output directory (default runs/teacher)."),
    checkpoint_dir: str | None = typer.Option(
        None,
        help="Checkpoints (default <out>/checkpoints; SageMaker "
        "/opt/ml/checkpoints). A run resumes from the latest one.",
    ),
    backbone: str | None = typer.Option(None, help="dinov3 | dinov3-tiny | dinov3-small | timm:<name>."),
    device: str | None = typer.Option(None, help="auto | cpu | cuda."),
    set_: list[str] = typer.Option(None, "--set", help="Override a field, e.g. --set phase1.steps=200."),
) -> None:
    """Fine-tune the teacher in two phases; multi-GPU with `torchrun --nproc_per_node N -m cardid.cli ...`."""
    from cardid.config import merge
    from cardid.train.configs import TeacherConfig, teacher_preset
    from cardid.train.teacher import train_teacher

    cfg = load_config(
        TeacherConfig,
        config,
        set_,
        defaults=merge(teacher_preset(preset), training_defaults()),
        data={"train": data, "val": val},
        out_dir=out_dir,
        checkpoint_dir=checkpoint_dir,
        model={"backbone": backbone},
        device=device,
    )
    res = train_teacher(cfg)
    best = res["best"]
    out.print(f"best val Recall@1 {best['recall@1']:.4f} at step {best['step']} → {cfg.out_dir}")


@app.command("detector")
def detector_cmd(
    data: str | None = typer.Option(None, help="pokemon_cards.yaml written by `cardid data detection`."),
    out_dir: str | None = typer.Option(None, "--out", help="Output folder (default models/detection)."),
    model: str | None = typer.Option(None, help="yolo11n-obb.yaml (from scratch) or a .pt to fine-tune."),
    epochs: int | None = typer.Option(None, min=1),
    imgsz: int | None = typer.Option(None, min=32),
    batch: int | None = typer.Option(None, min=1),
    device: str | None = typer.Option(None, help="cpu, 0, 0,1 … (default: GPU when present)."),
    config: Path | None = typer.Option(None, help="YAML with DetectorConfig fields."),
    set_: list[str] = typer.Option(None, "--set", help="Override a field, e.g. --set workers=0."),
) -> None:
    """Train the YOLO11n-OBB card detector (ultralytics) and export it to ONNX."""
    from cardid.config import load_config
    from cardid.detect.yolo import DetectorConfig, train_detector
    from cardid.sagemaker import detector_defaults

    cfg = load_config(
        DetectorConfig,
        config,
        set_,
        defaults=detector_defaults(),
        data=data,
        out_dir=out_dir,
        model=model,
        epochs=epochs,
        imgsz=imgsz,
        batch=batch,
        device=device,
    )
    res = train_detector(cfg)
    typer.echo(f"detector: {res['weights']} (val mAP@0.5 {res['val']['map50']:.3f})")


@app.command("frozen")
def frozen_cmd(
    catalog: Path = typer.Option(..., help="Catalog whose reference scans the mean is fitted on."),
    out_dir: Path = typer.Option(Path("runs/frozen"), "--out", help="Model directory to write."),
    backbone: str = typer.Option("opennsfw", help="opennsfw | efficientnet-lite0 (cardid[pretrained])."),
    pooling: str = typer.Option("gem+grid3x4", help="avg | gem | gridCxR | gem+gridCxR."),
    stage: int | None = typer.Option(
        None, min=1, help="Feature stage (opennsfw default 2 = conv4, stride 16)."
    ),
    preprocess: str = typer.Option("portrait160", help="Input size preset (pixel values: the weights')."),
    no_center: bool = typer.Option(False, "--no-center", help="Do not subtract the scans' mean."),
) -> None:
    """A frozen pretrained embedder, no training: packaged weights + layout-keeping pooling + a fitted mean."""
    from cardid.catalog.records import Catalog
    from cardid.progress import progress
    from cardid.train.frozen import build_frozen

    cat = Catalog.load(catalog)
    with progress(len(cat), "embedding scans") as advance:
        meta = build_frozen(
            cat, out_dir, backbone, pooling, preprocess, stage, center=not no_center, progress=advance
        )
    g = meta["metrics"]["gallery"]
    out.print(
        f"frozen {backbone} ({pooling}, {meta['embed_dim']}-d) → {out_dir}: "
        f"gallery mean cosine {g['mean_offdiag_cos']:.3f}, effective rank {g['effective_rank']:.0f}"
    )
