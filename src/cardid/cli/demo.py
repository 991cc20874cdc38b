"""``cardid demo``: the README's main job."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

out = Console()


def demo(
    out_dir: Path = typer.Option(Path("runs/demo"), "--out", help="Where everything is written."),
    cards: int = typer.Option(60, min=2, help="Synthetic cards."),
    seed: int = typer.Option(0, help="Random seed."),
    workers: int = typer.Option(0, min=0, help="Processes for rendering (0: every core)."),
) -> None:
    """Run the whole pipeline built so far on a synthetic catalog, then summarise what it produced."""
    from cardid.demo import run_demo  # torch and friends load only when a command needs them

    res = run_demo(out_dir, n_cards=cards, seed=seed, workers=workers)
    table = Table(title=f"cardid demo → {out_dir}")
    for col in ("stage", "what", "where", "s"):
        table.add_column(col)
    for s in res.stages:
        table.add_row(s["stage"], s["what"], s["path"], f"{s['seconds']:.1f}")
    out.print(table)
    out.print(
        f"Look at [bold]{out_dir / 'preview.png'}[/] (camera simulation) and "
        f"[bold]{out_dir / 'teacher' / 'curves.png'}[/] (teacher training curves)."
    )
    if res.serve_command:
        out.print(f"Scan with your camera: [bold]{res.serve_command}[/], then open http://127.0.0.1:8000/")
