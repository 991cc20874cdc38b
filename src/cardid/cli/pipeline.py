"""``cardid pipeline``: run a recipe of stages, from a catalog to a deployable bundle; ``cardid demo``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    help="Recipes of stages: catalog → teacher → students → export → DB → evaluation → bundle.",
    no_args_is_help=True,
)
out = Console()

STYLE = {"done": "green", "run": "yellow", "rerun": "yellow", "resume": "cyan", "skip": "dim"}


def stage_table(steps, title: str) -> Table:
    """One row per stage: what happened (or would), its time and its key figure."""
    table = Table(title=title, show_lines=False)
    for col in ("stage", "status", "s", "figure / why"):
        table.add_column(col, overflow="fold")
    for p in steps:
        rec = p.record if p.status == "done" else None
        secs = f"{rec['seconds']:.1f}" if rec and "seconds" in rec else ""
        style = STYLE.get(p.status, "")
        table.add_row(p.name, f"[{style}]{p.status}[/]" if style else p.status, secs, p.why)
    return table


def run_recipe(
    recipe: str, out_dir: Path, start: str | None, only: str | None, plan_only: bool, set_: list[str] | None
):
    from cardid.pipeline import load_recipe, plan, run

    r = load_recipe(recipe, set_)
    if plan_only:
        steps = plan(r, out_dir, start, only)
        out.print(stage_table(steps, f"cardid pipeline {r.name} → {out_dir} (plan: nothing is run)"))
        return None

    def planned(steps) -> None:  # the table before anything runs
        out.print(stage_table(steps, f"cardid pipeline {r.name} → {out_dir}"))

    def finished(p) -> None:  # the table's row, as each stage finishes
        out.print(f"[green]✓ {p.name}[/] {p.record['seconds']:.1f} s  {p.why}")

    log = lambda s: out.print(f"[bold]{s}[/]")  # noqa: E731
    res = run(r, out_dir, start, only, log=log, on_stage=finished, on_plan=planned)
    steps = plan(r, out_dir)
    out.print(
        stage_table(
            steps,
            f"cardid pipeline {r.name} → {out_dir}: {sum(p.status == 'done' for p in steps)}/{len(steps)} stages done",
        )
    )
    return res


@app.command("run")
def run_cmd(
    recipe: str = typer.Argument(
        ..., help="A shipped recipe (demo, cpu-real, spec-gpu, sagemaker) or a YAML file."
    ),
    out_dir: Path = typer.Option(..., "--out", help="The run folder: one sub-folder per stage."),
    start: str | None = typer.Option(None, "--from", help="Run this stage and every later one again."),
    only: str | None = typer.Option(None, "--only", help="Run only this stage (its inputs must be done)."),
    plan_only: bool = typer.Option(
        False, "--plan", help="Print the stages, what is done and what would run."
    ),
    set_: list[str] = typer.Option(None, "--set", help="Override: device=cpu, teacher.patience=2, …"),
) -> None:
    """Run RECIPE into --out: finished stages are skipped (same settings, inputs and cardid version),
    a killed stage resumes, changed ones run again; ends with the bundle to serve."""
    res = run_recipe(recipe, out_dir, start, only, plan_only, set_)
    if res is not None and any(s["kind"] == "bundle" for s in res.stages):
        b = next(s for s in res.stages if s["kind"] == "bundle")
        out.print(
            f"Scan with your camera: [bold]cardid serve {out_dir / b['outputs']['bundle']}[/], then open http://127.0.0.1:8000/"
        )


@app.command("list")
def list_cmd() -> None:
    """The shipped recipes and every stage kind."""
    from cardid.pipeline import load_recipe, shipped
    from cardid.pipeline.contract import REGISTRY
    from cardid.pipeline.runner import stage_def

    stage_def("catalog")  # registers them all
    t = Table(title="recipes")
    t.add_column("recipe")
    t.add_column("stages")
    t.add_column("what")
    for name in shipped():
        r = load_recipe(name)
        t.add_row(name, " → ".join(s.name for s in r.stages), r.description)
    out.print(t)
    k = Table(title="stage kinds")
    k.add_column("kind")
    k.add_column("reads")
    k.add_column("what")
    for d in REGISTRY.values():
        k.add_row(d.kind, ", ".join(d.needs + tuple(f"[{w}]" for w in d.wants)), d.doc)
    out.print(k)


def demo(
    out_dir: Path = typer.Option(Path("runs/demo"), "--out", help="Where everything is written."),
    cards: int = typer.Option(60, min=2, help="Synthetic cards."),
    seed: int = typer.Option(0, help="Random seed."),
    start: str | None = typer.Option(None, "--from", help="Run this stage and every later one again."),
) -> None:
    """The main job: the `demo` recipe (every stage on a synthetic catalog); a rerun skips what is done."""
    res = run_recipe("demo", out_dir, start, None, False, [f"catalog.synth.cards={cards}", f"seed={seed}"])
    out.print(
        f"Look at [bold]{out_dir / 'preview' / 'preview.png'}[/] (camera simulation) and "
        f"[bold]{out_dir / 'teacher' / 'curves.png'}[/] (teacher training curves)."
    )
    bundle = next((s for s in res.stages if s["kind"] == "bundle"), None)
    if bundle:
        out.print(
            f"Scan with your camera: [bold]cardid serve {out_dir / bundle['outputs']['bundle']}[/], then open http://127.0.0.1:8000/"
        )
