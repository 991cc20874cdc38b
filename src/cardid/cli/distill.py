"""``cardid distill``: students from one teacher, in one pass."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from cardid.config import load_config, merge
from cardid.sagemaker import training_defaults

out = Console()


def distill_cmd(
    teacher: str | None = typer.Option(
        None, help="Teacher model directory (model.json + teacher.safetensors)."
    ),
    students: str | None = typer.Option(
        None, help="Comma-separated presets: hailo,ios,android (tiny-cnn, tiny-vit)."
    ),
    data: str | None = typer.Option(None, help="A catalog (online synthesis) or a dataset directory."),
    val: str | None = typer.Option(
        None, help="Queries: a CSV of real photos or a dataset (default: val views)."
    ),
    out_dir: str | None = typer.Option(
        None, "--out", help="Run directory; students land in <out>/students/<preset>/."
    ),
    checkpoint_dir: str | None = typer.Option(None, help="Checkpoints (default <out>/checkpoints); resumes."),
    preset: str = typer.Option("spec", help="Starting point below the YAML: spec or tiny."),
    config: Path | None = typer.Option(None, help="YAML with DistillConfig fields."),
    set_: list[str] = typer.Option(None, "--set", help="Override a field, e.g. --set loss.mse=1."),
) -> None:
    """Distil students (ConvNeXt-T@224 for Hailo, ConvNeXt-B@384 for iOS, ViT-S@224 for Android)."""
    from cardid.errors import CardIDError
    from cardid.train.configs import DISTILL_PRESETS, DistillConfig
    from cardid.train.distill import distill

    if preset not in DISTILL_PRESETS:
        raise CardIDError(f"unknown distill preset {preset!r} (known: {', '.join(DISTILL_PRESETS)})")
    names = [s.strip() for s in students.split(",") if s.strip()] if students else None
    cfg = load_config(
        DistillConfig,
        config,
        set_,
        defaults=merge(DISTILL_PRESETS[preset], training_defaults()),
        teacher=teacher,
        students=names,
        data={"train": data, "val": val},
        out_dir=out_dir,
        checkpoint_dir=checkpoint_dir,
    )
    res = distill(cfg)
    table = Table(
        title=f"distilled from {cfg.teacher} (teacher val Recall@1 {res['teacher_val_recall@1']:.3f})"
    )
    for col in ("student", "val R@1", "step", "cross R@1 (teacher gallery)", "saved in"):
        table.add_column(col)
    for name, b in res["best"].items():
        m = b.get("metrics", {})
        table.add_row(
            name,
            f"{b['recall@1']:.3f}",
            str(b["step"]),
            f"{m.get('cross/recall@1', float('nan')):.3f}",
            str(Path(cfg.out_dir) / "students" / name),
        )
    out.print(table)
