"""``cardid index``: build, search, extend, adapt and calibrate a reference DB."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from cardid.errors import CardIDError

app = typer.Typer(help="Reference DB: build, search, add cards, calibrate decisions.", no_args_is_help=True)
out = Console()

MODEL = typer.Option(..., help="The embedding artefact: a model directory (model.json + weights).")
DB = typer.Option(..., "--db", help="A reference DB directory (from `cardid index build`).")
DETECTOR = typer.Option("classical", help="Card finder for the photos: 'classical' or a YOLO-OBB .pt/.onnx.")
CONF = typer.Option(0.25, min=0.0, max=1.0, help="Detector confidence threshold.")


@app.command("build")
def build_cmd(
    model: Path = MODEL,
    catalog: Path = typer.Option(..., help="A catalog directory or a folder of <card_id>.<ext> scans."),
    out_dir: Path = typer.Option(..., "--out", help="The DB directory to write."),
    dtype: str = typer.Option("f32", help="usearch index storage: f32, f16 or i8."),
    verify: bool = typer.Option(True, help="Store keypoints, strips and hashes for verification."),
    batch_size: int = typer.Option(64, min=1, help="Embedding batch size."),
    workers: int = typer.Option(2, min=0, help="Image decoding processes."),
    overwrite: bool = typer.Option(False, help="Replace an existing DB (only once the new one is complete)."),
    calibrate: bool = typer.Option(
        True, help="Calibrate decisions on simulated views of the scans (else every decision is 'unknown')."
    ),
    calibrate_cards: int = typer.Option(300, min=1, help="How many cards to render one simulated view of."),
    skip_missing: bool = typer.Option(
        False, help="Leave out cards whose scan is missing (listed in db.json) instead of stopping."
    ),
) -> None:
    """Embed every gallery scan with MODEL, write a self-describing DB directory and calibrate it."""
    from cardid.catalog.records import Catalog
    from cardid.db.build import build_db
    from cardid.db.verify import VerifyConfig
    from cardid.embed import load_embedder
    from cardid.progress import progress

    emb = load_embedder(model, batch_size=batch_size)
    cat = Catalog.open(catalog)
    n = len(cat) - (len(cat.missing_images()) if skip_missing else 0)
    with progress(n * (2 if verify else 1), "indexing") as advance:
        db = build_db(
            emb,
            cat,
            out_dir,
            dtype=dtype,
            verify=VerifyConfig() if verify else None,
            overwrite=overwrite,
            workers=workers,
            progress=advance,
            skip_missing=skip_missing,
        )
    skipped = db.meta.get("skipped_missing") or []
    if skipped:
        out.print(
            f"[yellow]skipped {len(skipped)} card(s) without a scan[/], e.g. {', '.join(skipped[:3])} "
            f"(listed in {out_dir / 'db.json'}; `cardid index add` them once they are downloaded)"
        )
    out.print(
        f"[green]DB[/] {out_dir}: {len(db)} cards × {db.dim} ({dtype}), model {db.meta['model']['identity']}"
    )
    if calibrate:
        from cardid.fit.calibrate import calibrate_on_views

        with progress(min(calibrate_cards, len(db)), "calibrating") as advance:
            cals = calibrate_on_views(db, emb, cat, calibrate_cards, progress=advance)
        for mode, cal in cals.items():
            st = cal.stats
            out.print(
                f"calibrated ({mode}): threshold {cal.threshold:.3f}, precision {st['precision']:.3f}, "
                f"recall {st['recall']:.3f} on simulated views"
            )
        _say_printing(cals)


@app.command("add")
def add_cmd(
    model: Path = MODEL,
    db: Path = DB,
    catalog: Path = typer.Option(..., help="The new cards: a catalog directory or a folder of scans."),
    batch_size: int = typer.Option(64, min=1, help="Embedding batch size."),
    workers: int = typer.Option(2, min=0, help="Image decoding processes."),
) -> None:
    """Append new cards (e.g. a new set) without re-embedding the others."""
    from cardid.catalog.records import Catalog
    from cardid.db.build import add_cards
    from cardid.db.store import CardDB
    from cardid.embed import load_embedder
    from cardid.progress import progress

    emb = load_embedder(model, batch_size=batch_size)
    card_db = CardDB.load(db, emb)
    cat = Catalog.open(catalog)
    verify = card_db.features is not None
    with progress(len(cat) * (2 if verify else 1), "adding") as advance:
        new = add_cards(card_db, emb, cat, workers=workers, progress=advance)
    out.print(f"[green]DB[/] {db}: {len(card_db)} → {len(new)} cards")
    if new.calibration:
        out.print(
            "[yellow]note:[/] thresholds were calibrated before the new cards; re-run `cardid index calibrate`"
        )


@app.command("search")
def search_cmd(
    images: list[Path] = typer.Argument(..., help="Card crops to look up."),
    model: Path = MODEL,
    db: Path = DB,
    k: int = typer.Option(5, min=1, help="Neighbours per image."),
    approximate: bool = typer.Option(False, help="Use the HNSW graph instead of exact search."),
) -> None:
    """Nearest gallery cards by embedding alone (no verification, no decision)."""
    from cardid.db.store import CardDB
    from cardid.embed import load_embedder
    from cardid.images import load_rgb

    emb = load_embedder(model)
    card_db = CardDB.load(db, emb)
    vecs = emb.embed([load_rgb(p) for p in images])
    for path, hits in zip(images, card_db.search(vecs, k, exact=not approximate), strict=True):
        table = Table(title=str(path))
        for col in ("#", "card", "name", "set", "number", "cosine"):
            table.add_column(col)
        for i, h in enumerate(hits, 1):
            table.add_row(
                str(i), h.card_id, h.record.name, h.record.set_id, h.record.number, f"{h.similarity:.4f}"
            )
        out.print(table)


@app.command("adapt")
def adapt_cmd(
    model: Path = MODEL,
    db: Path = DB,
    photos: Path | None = typer.Option(
        None, help="Labelled real photos: a CSV of file,card_id[,notes] (the form of photos-dev.csv)."
    ),
    detector: str = DETECTOR,
    conf: float = CONF,
    folds: int = typer.Option(5, min=2, help="Card-disjoint inner folds the ridge λ is chosen on."),
    seed: int = typer.Option(0, help="Seed of the inner fold split."),
    remove: bool = typer.Option(False, "--remove", help="Remove the DB's adapter instead."),
    printing: bool = typer.Option(
        True, help="Also fit the printing model on the photos (with simulated views of the DB's cards)."
    ),
) -> None:
    """Learn from labelled real photos: a query adapter (photo ↔ scan pairs) and the printing
    model, stored with the DB.

    Every later query embedding is mapped towards its scan's before the search, and the printing
    of a known card is weighed by a model fitted on real photos (without one it is decided by the
    rules). Measure both card-disjointly first: `cardid eval photos --folds 5 --adapter`."""
    from cardid.db.store import CardDB
    from cardid.embed import load_embedder
    from cardid.fit.photos import adapt_from_photos

    if remove:
        CardDB.load(db, load_embedder(model)).save_adapter(None)
        out.print(f"removed the query adapter of {db}")
        return
    if photos is None:
        raise CardIDError("give --photos (a labelled CSV) to fit an adapter on, or --remove")
    said = adapt_from_photos(model, db, photos, detector, conf, folds, seed, printing)
    for line in said["said"]:
        out.print(line)


@app.command("backs")
def backs_cmd(
    model: Path = MODEL,
    db: Path = DB,
    photos: Path | None = typer.Option(
        None, help="Labelled photos (CSV) some of which show a card's front and back side by side."
    ),
    image: list[Path] = typer.Option([], help="A reference image of a card back (repeatable)."),
    detector: str = DETECTOR,
    conf: float = CONF,
    limit: int = typer.Option(8, min=1, help="Front+back photos to cut backs from."),
    remove: bool = typer.Option(False, "--remove", help="Remove the DB's card backs instead."),
) -> None:
    """Teach the DB a card's back, so that a back in a photo is said to be one (`back`), counted
    apart and never offered as an unknown card: from reference images, or cut from labelled
    photos of a card's front and back; the threshold is fitted on simulated views."""
    from cardid.fit.backs import learn_backs

    if remove:
        from cardid.db.backs import save_backs
        from cardid.db.store import CardDB
        from cardid.embed import load_embedder

        save_backs(CardDB.load(db, load_embedder(model)), None)
        out.print(f"removed the card backs of {db}")
        return
    out.print(learn_backs(model, db, photos, image, detector, conf, limit)["said"])


@app.command("calibrate")
def calibrate_cmd(
    model: Path = MODEL,
    db: Path = DB,
    queries: Path | None = typer.Option(
        None, help="Labelled queries: a CSV (file, card_id) or a dataset directory. Default: simulated views."
    ),
    catalog: Path | None = typer.Option(
        None, help="For simulated views: the catalog the DB was built from (default: the one in db.json)."
    ),
    cards: int = typer.Option(300, min=1, help="Simulated views: how many DB cards to render (1 view each)."),
    target_precision: float = typer.Option(0.95, help="Precision of accepted results to calibrate for."),
    seed: int = typer.Option(0, help="Seed for the simulated views."),
) -> None:
    """Choose the unknown-card threshold and the ambiguity margin; store them in db.json."""
    from cardid.db.store import CardDB
    from cardid.embed import load_embedder
    from cardid.eval.queries import load_queries
    from cardid.fit.calibrate import calibrate_db, calibrate_on_views
    from cardid.images import load_rgb
    from cardid.progress import progress

    emb = load_embedder(model)
    card_db = CardDB.load(db, emb)
    if queries is not None:
        qs = load_queries(queries)
        images, labels = [load_rgb(p) for p in qs.paths], qs.card_ids
        with progress(len(images), "calibrating") as advance:
            result = calibrate_db(card_db, emb, images, labels, target_precision, progress=advance)
    else:
        cat = card_db.gallery(catalog)
        with progress(min(cards, len(card_db)), "calibrating") as advance:
            result = calibrate_on_views(card_db, emb, cat, cards, seed, target_precision, advance)
    table = Table(title=f"calibration of {db} (target precision {target_precision})")
    for col in (
        "mode",
        "threshold",
        "margin",
        "precision",
        "recall",
        "unknown rejected",
        "match/ambig/unknown",
    ):
        table.add_column(col)
    for mode, cal in result.items():
        s = cal.stats
        table.add_row(
            mode,
            f"{cal.threshold:.3f}",
            f"{cal.margin:.3f}",
            f"{s['precision']:.3f}",
            f"{s['recall']:.3f}",
            f"{s['unknown_rejected']:.3f}",
            "/".join(str(v) for v in s["decisions"].values()),
        )
    out.print(table)
    _say_printing(result)


def _say_printing(cals: dict) -> None:
    """One line on the printing model fitted with the fused calibration (or why there is none)."""
    fused = cals.get("fused")
    pm = fused.printing if fused is not None else None
    if pm:
        out.print(
            f"printing model: fitted on {pm['fitted'].get('sets', 0)} simulated printing sets, names a printing "
            f"at p ≥ {pm['p_min']} (fit it on real photos card-disjointly with `cardid eval photos --folds 5`)"
        )
    elif fused is not None:
        out.print("printing model: hand-set defaults (no card in the DB has another printing to fit it on)")
