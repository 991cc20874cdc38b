"""``cardid cloud``: S3 sync, SageMaker training jobs, IAM policy; ``cardid cost``."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help="AWS: S3 layout sync, SageMaker training jobs, IAM policy.", no_args_is_help=True)
out = Console()


@app.command("sync")
def sync_cmd(
    direction: str = typer.Argument(..., help="up (local → S3) or down (S3 → local)."),
    local: Path = typer.Argument(..., help="Local folder."),
    uri: str = typer.Argument(
        ..., help="s3://bucket/<layout prefix>, e.g. s3://my-bucket/datasets/embedding"
    ),
    dry_run: bool = typer.Option(False, help="List what would be transferred; transfer nothing."),
    endpoint_url: str | None = typer.Option(None, help="S3-compatible endpoint (tests, MinIO)."),
    region: str | None = typer.Option(None),
) -> None:
    """Resumable sync: unchanged files (size + SHA-256) are skipped, multipart for large files."""
    from cardid.cloud.s3 import client, sync_down, sync_up
    from cardid.errors import CardIDError
    from cardid.progress import progress

    if direction not in ("up", "down"):
        raise CardIDError(f"direction must be 'up' or 'down', not {direction!r}")
    s3 = client("s3", region, endpoint_url)
    fn = sync_up if direction == "up" else sync_down
    args = (local, uri) if direction == "up" else (uri, local)
    plan = fn(*args, s3=s3, dry_run=True)
    if dry_run:
        for _, key, size in plan.transfer:
            out.print(f"{'upload' if direction == 'up' else 'download'} {key} ({size / 2**20:.1f} MiB)")
        out.print(
            f"{len(plan.transfer)} to transfer ({plan.bytes / 2**20:.1f} MiB), {len(plan.unchanged)} unchanged"
        )
        return
    with progress(len(plan.transfer), f"sync {direction}") as advance:
        done = fn(*args, s3=s3, progress=advance)
    out.print(f"[green]{len(done.transfer)} transferred[/], {len(done.unchanged)} unchanged")


@app.command("launch")
def launch_cmd(
    kind: str = typer.Argument(..., help="teacher, distill or detector."),
    config: Path | None = typer.Option(None, help="YAML with JobConfig fields (bucket, role_arn, …)."),
    set_: list[str] = typer.Option(None, "--set", help="Override a field, e.g. --set instance_count=2."),
    dry_run: bool = typer.Option(False, help="Print the exact CreateTrainingJob request; launch nothing."),
    repo: Path = typer.Option(Path("."), help="Repository root to bundle as the job's source."),
) -> None:
    """A SageMaker training job (managed spot, checkpoints to S3, torchrun on every GPU)."""
    from cardid.cloud.jobs import JobConfig, launch
    from cardid.config import load_config

    cfg = load_config(JobConfig, config, set_, kind=kind)
    res = launch(cfg, repo, dry_run=dry_run)
    if dry_run:
        print(json.dumps(res, indent=2))
    else:
        out.print(f"[green]launched[/] {res['response'].get('TrainingJobArn')}")


@app.command("iam-policy")
def iam_cmd(bucket: str = typer.Option(..., help="The project's bucket.")) -> None:
    """The SageMaker execution role's least-privilege policy (JSON)."""
    from cardid.cloud.iam import role_policy

    print(json.dumps(role_policy(bucket), indent=2))


def cost_cmd(
    teacher_config: Path = typer.Option(Path("configs/teacher-vitl16.yaml"), help="The teacher run config."),
    measured: list[Path] = typer.Option(None, help="JSON files with measured images/s per job."),
    detector_images: int = typer.Option(5000, min=1, help="Detection training images."),
    detector_epochs: int = typer.Option(100, min=1),
) -> None:
    """Estimated hours and dollars for the planned runs, beside the spec's own table."""
    from cardid.cloud.cost import SPEC_TABLE, SPOT_DISCOUNT, estimate, load_measured

    lines = estimate(teacher_config, detector_images, detector_epochs, load_measured(measured or []))
    t = Table(title=f"cardid estimate (spot = {SPOT_DISCOUNT:.0%} off on-demand)")
    for col in ("job", "instance", "images", "img/s", "source", "hours", "on-demand $", "spot $"):
        t.add_column(col)
    for ln in lines:
        t.add_row(
            ln.job,
            ln.instance,
            f"{ln.images:,}",
            f"{ln.img_s:.0f}",
            ln.source,
            f"{ln.hours:.2f}",
            f"{ln.on_demand:.2f}",
            f"{ln.spot:.2f}",
        )
    t.add_row(
        "total",
        "",
        "",
        "",
        "",
        f"{sum(x.hours for x in lines):.2f}",
        f"{sum(x.on_demand for x in lines):.2f}",
        f"{sum(x.spot for x in lines):.2f}",
    )
    out.print(t)
    s = Table(title="the spec's table (its assumptions: fixed durations, 70 % spot discount)")
    for col in ("phase", "instance", "hours", "spot $"):
        s.add_column(col)
    for name, inst, hours, usd in SPEC_TABLE:
        s.add_row(name, inst, f"{hours:.1f}", f"{usd:.2f}")
    s.add_row("total", "", f"{sum(x[2] for x in SPEC_TABLE):.1f}", f"{sum(x[3] for x in SPEC_TABLE):.2f}")
    out.print(s)
    if any(ln.source == "assumed" for ln in lines):
        out.print(
            "[yellow]note:[/] 'assumed' rates are estimates; measure them on the instance with "
            "benchmarks/train_throughput.py and pass --measured"
        )
