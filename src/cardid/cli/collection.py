"""``cardid collection``: the cards a collector keeps (SQLite) — list, export, import, undo, redo."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    help="Your collection: list, export (TCGplayer, Collectr, Dragon Shield, TCG Collector, cardid), import, undo, redo.",
    no_args_is_help=True,
)
out = Console()

COLLECTION = typer.Option(
    None,
    "--collection",
    help="The collection file (default: collection.sqlite in your data dir, ~/.local/share/cardid).",
)
DB = typer.Option(None, "--db", help="The reference DB whose catalog names the cards (names, sets, rarity).")


def _open(collection: Path | None, create: bool = False):
    """The collection; reading, undoing or exporting one that is not there is an error."""
    from cardid.collection import Collection, default_path

    return Collection(collection or default_path(), create=create)


def _records(db: Path | None) -> dict:
    if db is None:
        return {}
    from cardid.db.store import CardDB

    return CardDB.load(db, verify_files=False).records


def _sync_labelled(c) -> None:
    """The scanner's labelled crops beside the collection follow an undo, a redo or an import."""
    from cardid.serve.labelled import LabelledCrops

    labelled = LabelledCrops(c.path.parent / "labelled")
    if labelled.csv.is_file():
        labelled.sync(c)


@app.command("list")
def list_cmd(
    collection: Path | None = COLLECTION,
    db: Path | None = DB,
    folder: str | None = typer.Option(None),
    limit: int = typer.Option(200, min=0, help="Rows shown, newest last (0: all of them)."),
    offset: int = typer.Option(0, min=0, help="Rows skipped first (paging: --offset 200)."),
) -> None:
    """Every row: card, quantity, condition, language, printing, folder, when added."""
    from rich.text import Text

    c = _open(collection)
    records = _records(db)
    total = c.size(folder)
    t = Table(title=Text(f"{c.path}: {c.count()} cards, {total} rows"))
    for col in ("row", "card", "name", "qty", "cond", "lang", "printing", "folder", "added"):
        t.add_column(col)
    shown = c.rows(folder, limit=limit or None, offset=offset)
    for r in shown:
        name = getattr(records.get(r.card_id), "name", "") or ""
        cells = (str(r.id), r.card_id, name, str(r.quantity), r.condition, r.language, r.printing, r.folder)
        t.add_row(*(Text(v) for v in (*cells, r.added[:10])))  # text as it is: no markup read into it
    out.print(t)
    if offset + len(shown) < total:
        out.print(
            f"rows {offset + 1}–{offset + len(shown)} of {total}: --offset {offset + len(shown)} for more, --limit 0 for all"
        )


@app.command("export")
def export_cmd(
    fmt: str = typer.Option(
        "cardid", "--format", help="tcgplayer, collectr, dragonshield, tcgcollector, cardid (CSV) or json."
    ),
    out_file: Path = typer.Option(
        ..., "--out", help="The file to write (never an existing one without --overwrite)."
    ),
    collection: Path | None = COLLECTION,
    db: Path | None = DB,
    overwrite: bool = typer.Option(False, help="Replace --out if it exists (never the collection itself)."),
) -> None:
    """Write the collection in a format a collection app imports (formula cells neutralised)."""
    from cardid.collection.formats import FORMATS, export
    from cardid.errors import CardIDError
    from cardid.io import write_bytes_atomic

    if fmt not in FORMATS:
        raise CardIDError(f"unknown export format {fmt!r} (known: {', '.join(FORMATS)})")
    c = _open(collection)
    target = out_file.resolve()
    own = c.path.resolve()
    if target in (own, own.with_name(own.name + "-wal"), own.with_name(own.name + "-shm")):
        raise CardIDError(f"--out {out_file} is the collection itself; choose another file")
    if out_file.is_dir():
        raise CardIDError(f"--out {out_file} is a folder; name a file")
    if out_file.exists() and not overwrite:
        raise CardIDError(f"{out_file} exists; choose another file or give --overwrite")
    rows = c.rows()
    text = export(rows, _records(db), fmt)
    write_bytes_atomic(out_file, text.encode("utf-8"))
    out.print(_plain(f"{len(rows)} rows ({c.count()} cards) → {out_file} ({fmt})"))


@app.command("import")
def import_cmd(
    file: Path = typer.Argument(
        ...,
        help="An export: cardid's own (CSV or JSON), or the TCGplayer app's, Collectr's, Dragon Shield's or TCG Collector's.",
    ),
    collection: Path | None = COLLECTION,
    db: Path | None = DB,
    again: bool = typer.Option(
        False, help="Import rows already in the collection (the same backup twice) once more."
    ),
) -> None:
    """Add the rows of an export as one change (`cardid collection undo` takes it back). cardid's
    own export comes back row for row, exactly; another app's cards are found in --db's catalog
    by set and number. A row that names no card, or two, stops the whole import, naming its line;
    so does a backup already imported (unless --again)."""
    from cardid.collection.imports import decode_export, parse_import
    from cardid.errors import CardIDError

    if not file.is_file():
        raise CardIDError(f"no such file: {file}")
    got = parse_import(decode_export(file.read_bytes(), str(file)), _records(db))
    c = _open(collection, create=True)
    own = got.format in ("cardid", "json")
    if not again:
        twice = c.already(got.rows)
        if twice:
            raise CardIDError(
                f"{len(twice)} of the {len(got.rows)} rows of {file} are already in the collection, the same "
                f"in every field (first: row {twice[0] + 1}, {got.rows[twice[0]]['card_id']}): imported "
                "before? Nothing was imported; --again imports them once more"
            )
    c.add_many(got.rows, merge=not own)  # a backup comes back row for row
    _sync_labelled(c)
    out.print(_plain(f"imported {len(got.rows)} rows ({got.format}) into {c.path} ({c.count()} cards)"))


@app.command("undo")
def undo_cmd(collection: Path | None = COLLECTION, db: Path | None = DB) -> None:
    """Take back the last change (an edit, a removal, a whole import)."""
    _step(collection, "undo")


@app.command("redo")
def redo_cmd(collection: Path | None = COLLECTION, db: Path | None = DB) -> None:
    """Make again the change undone last (until another change is made)."""
    _step(collection, "redo")


def _step(collection: Path | None, what: str) -> None:
    c = _open(collection)
    ch = getattr(c, what)()
    _sync_labelled(c)
    out.print(
        f"nothing to {what}" if ch is None else _plain(f"{ch.action} ({ch.info.get('edits', 1)} edit(s))")
    )


def _plain(s: str):
    """Text printed as it is (a folder or card id with `[/]` in it is no markup)."""
    from rich.text import Text

    return Text(s)
