"""``cardid data``: dataset layouts."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from cardid.catalog import Catalog
from cardid.config import load_config
from cardid.data.layout import EmbeddingDataConfig, write_embedding_dataset
from cardid.progress import progress
from cardid.synth.settings import photo_preset

app = typer.Typer(help="Training and evaluation datasets.", no_args_is_help=True)
out = Console()


@app.command("embedding")
def embedding_cmd(
    catalog_dir: Path = typer.Option(..., "--catalog", help="Catalog directory."),
    out_dir: Path = typer.Option(..., "--out", help="Dataset directory to write."),
    train_views: int | None = typer.Option(None, min=1, help="Camera views per card in train/ (default 8)."),
    val_views: int | None = typer.Option(None, min=1, help="New camera views per card in val/ (default 2)."),
    seed: int | None = typer.Option(None, help="Random seed (default 0)."),
    preset: str = typer.Option("default", help="Photo simulation preset."),
    config: Path | None = typer.Option(None, help="YAML with EmbeddingDataConfig fields."),
    set_: list[str] = typer.Option(None, "--set", help="Override a field, e.g. --set photo.p_glare=0.8."),
    workers: int = typer.Option(0, min=0, help="Processes (0: every core)."),
    overwrite: bool = typer.Option(False, help="Replace an existing output directory."),
) -> None:
    """Write train/ val/ gallery/ + class_index.json + card_metadata.json (the spec's layout)."""
    cfg = load_config(
        EmbeddingDataConfig,
        config,
        set_,
        defaults={"photo": photo_preset(preset).model_dump()},
        train_views=train_views,
        val_views=val_views,
        seed=seed,
    )
    cat = Catalog.load(catalog_dir)
    with progress(len(cat), "rendering views") as advance:
        write_embedding_dataset(cat, out_dir, cfg, workers=workers, overwrite=overwrite, progress=advance)
    out.print(f"{len(cat)} cards × ({cfg.train_views} train + {cfg.val_views} val) views → {out_dir}")


@app.command("detection")
def detection_cmd(
    catalog: Path = typer.Option(..., help="A catalog (or a folder of scans) whose cards fill the scenes."),
    out_dir: Path = typer.Option(..., "--out", help="Dataset root (ultralytics OBB layout)."),
    scenes: int = typer.Option(500, min=3, help="Simulated photos (1–18 cards, binder pages, negatives)."),
    size: int = typer.Option(640, min=64, help="Photo size in pixels (square)."),
    seed: int = typer.Option(0, help="Random seed."),
    real: Path | None = typer.Option(
        None, help="Real photos with YOLO txt labels to mix in (20 % held out in images/real_test)."
    ),
    real_test: float = typer.Option(
        0.2, min=0.0, max=0.9, help="Fraction of the real photos held out (never trained on)."
    ),
    distractors: float = typer.Option(
        0.5, min=0.0, max=1.0, help="Share of scenes with hard negatives (card backs, phones…)."
    ),
    slabs: float = typer.Option(
        0.15, min=0.0, max=1.0, help="Chance that a loose card (scenes of ≤ 3) sits in a graded slab."
    ),
    overwrite: bool = typer.Option(False, help="Replace an existing dataset."),
) -> None:
    """Multi-card scenes with oriented card labels: images/{train,val,test}, labels/…, pokemon_cards.yaml."""
    from cardid.catalog.records import Catalog
    from cardid.data.detection import DetectionDataConfig, write_detection_dataset
    from cardid.progress import progress

    cat = Catalog.open(catalog)
    with progress(scenes, "detection scenes") as advance:
        path = write_detection_dataset(
            cat,
            out_dir,
            DetectionDataConfig(
                scenes=scenes,
                size=size,
                seed=seed,
                real=str(real) if real else None,
                real_test_fraction=real_test,
                p_distractors=distractors,
                p_slab=slabs,
            ),
            overwrite,
            advance,
        )
    out.print(f"[green]detection dataset[/] {path} ({scenes} scenes)")
