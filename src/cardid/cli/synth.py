"""``cardid synth``: procedural card scans and the camera-simulation preview."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from cardid.catalog import Catalog
from cardid.config import load_config
from cardid.progress import progress
from cardid.synth.cards import synth_cards
from cardid.synth.preview import write_contact_sheet
from cardid.synth.settings import PRESETS, PhotoSimConfig, photo_preset

app = typer.Typer(help="Synthetic cards and camera photos.", no_args_is_help=True)
out = Console()


@app.command("cards")
def cards_cmd(
    n: int = typer.Option(200, "--n", min=1, help="Number of cards."),
    out_dir: Path = typer.Option(..., "--out", help="Catalog directory to write."),
    seed: int = typer.Option(0, help="Random seed."),
    height: int = typer.Option(512, min=64, help="Scan height in pixels."),
    reprint_fraction: float = typer.Option(0.2, min=0.0, max=1.0, help="Share of near-duplicate reprints."),
    overwrite: bool = typer.Option(False, help="Replace an existing output directory."),
) -> None:
    """Write a synthetic catalog of card scans with deliberate reprints."""
    with progress(n, "drawing cards") as advance:
        cat = synth_cards(out_dir, n, seed, height, reprint_fraction, overwrite, advance)
    reprints = sum(1 for r in cat if getattr(r, "reprint_of", None))
    out.print(f"{len(cat)} cards ({reprints} reprints) → {out_dir}")


@app.command("preview")
def preview_cmd(
    catalog_dir: Path = typer.Option(..., "--catalog", help="Catalog directory."),
    out_png: Path = typer.Option(Path("sheet.png"), "--out", help="PNG to write."),
    cards: int = typer.Option(4, min=1, help="Rows (cards) on the sheet."),
    seed: int = typer.Option(0, help="Random seed."),
    preset: str = typer.Option("default", help=f"Photo simulation preset ({', '.join(PRESETS)})."),
    config: Path | None = typer.Option(None, help="YAML with PhotoSimConfig fields."),
    set_: list[str] = typer.Option(None, "--set", help="Override a field, e.g. --set p_glare=0.8."),
    compare: Path | None = typer.Option(None, help="Folder of real photo crops to show as a last row."),
) -> None:
    """Contact sheet: scan | 8 camera crops | 2 scenes per card (and real crops to compare)."""
    cfg = load_config(PhotoSimConfig, config, set_, defaults=photo_preset(preset).model_dump())
    write_contact_sheet(Catalog.load(catalog_dir), out_png, cards=cards, seed=seed, cfg=cfg, compare=compare)
    out.print(f"contact sheet → {out_png}")
