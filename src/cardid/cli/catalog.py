"""``cardid catalog``: import, download, build from a folder, report duplicates."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from cardid.catalog import Catalog
from cardid.catalog.dedupe import find_duplicates, write_duplicate_report
from cardid.catalog.download import FAILURES_FILE, download_images
from cardid.catalog.folder import catalog_from_folder
from cardid.catalog.pokemontcg import import_pokemontcg
from cardid.errors import CardIDError
from cardid.progress import progress

app = typer.Typer(help="Card catalogs: metadata, class index, scans.", no_args_is_help=True)
out = Console()


def _report_duplicates(cat: Catalog, max_distance: int) -> None:
    with progress(len(cat), "hashing scans") as advance:
        rep = find_duplicates(cat, max_distance, advance)
    path = write_duplicate_report(cat, rep)
    if rep.pairs:
        out.print(
            f"[yellow]{len(rep.pairs)} near-identical image pair(s)[/] (reprints or mistakes), see {path}"
        )
        for p in rep.pairs[:5]:
            out.print(f"  {p['a']} ~ {p['b']} (hamming {p['hamming']})")
    if rep.unreadable:
        raise CardIDError(f"{len(rep.unreadable)} unreadable image(s), e.g. {rep.unreadable[0]['error']}")


@app.command("import-pokemontcg")
def import_cmd(
    data_dir: Path = typer.Option(
        ..., "--data-dir", help="pokemontcg.io static data (sets/en.json, cards/en/)."
    ),
    out_dir: Path = typer.Option(Path("catalog"), "--out", help="Catalog directory to write."),
    sets: str = typer.Option("", "--sets", help="Comma-separated set ids (default: all)."),
    image_size: str = typer.Option("large", help="Which image URL to record: small or large."),
) -> None:
    """Write card_metadata.json and class_index.json from pokemontcg.io data."""
    wanted = [s.strip() for s in sets.split(",") if s.strip()] or None
    cat = import_pokemontcg(data_dir, out_dir, wanted, image_size)
    out.print(f"{len(cat)} cards from {len({r.set_id for r in cat})} set(s) → {out_dir}")


@app.command("download")
def download_cmd(
    catalog_dir: Path = typer.Argument(..., help="Catalog directory."),
    workers: int = typer.Option(8, min=1, help="Concurrent downloads."),
    retries: int = typer.Option(3, min=0, help="Retries per image on transient errors."),
    timeout: float = typer.Option(30.0, min=0.1, help="Seconds per request."),
    max_distance: int = typer.Option(
        4, min=0, max=64, help="pHash Hamming distance counted as a duplicate image."
    ),
) -> None:
    """Fetch every card's scan (resumable: complete files are skipped)."""
    cat = Catalog.load(catalog_dir)
    with progress(len(cat), "downloading") as advance:
        rep = download_images(cat, workers=workers, retries=retries, timeout=timeout, progress=advance)
    out.print(
        f"downloaded {len(rep.downloaded)}, already present {len(rep.skipped)}, failed {len(rep.failed)}"
    )
    if rep.failed:
        raise CardIDError(f"{len(rep.failed)} download(s) failed, see {catalog_dir / FAILURES_FILE}")
    _report_duplicates(cat, max_distance)


@app.command("from-folder")
def from_folder_cmd(
    folder: Path = typer.Argument(..., help="Folder of scans named <card_id>.<ext>."),
    out_dir: Path | None = typer.Option(None, "--out", help="Catalog directory (default: the folder)."),
    csv: Path | None = typer.Option(None, "--csv", help="Metadata CSV with a card_id column."),
    pokemontcg: Path | None = typer.Option(
        None, "--pokemontcg", help="pokemontcg.io data for names and sets."
    ),
    max_distance: int = typer.Option(
        4, min=0, max=64, help="pHash Hamming distance counted as a duplicate image."
    ),
) -> None:
    """Build a catalog from a folder of scans; the images stay where they are."""
    cat = catalog_from_folder(folder, out_dir, csv, pokemontcg)
    out.print(f"{len(cat)} cards → {cat.root}")
    _report_duplicates(cat, max_distance)


@app.command("dedupe")
def dedupe_cmd(
    catalog_dir: Path = typer.Argument(..., help="Catalog directory."),
    max_distance: int = typer.Option(
        4, min=0, max=64, help="pHash Hamming distance counted as a duplicate image."
    ),
) -> None:
    """Report card ids whose scans are near-identical (perceptual hash)."""
    cat = Catalog.load(catalog_dir)
    cat.require_images()
    _report_duplicates(cat, max_distance)
