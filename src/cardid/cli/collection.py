"""``cardid collection``: the cards a collector keeps (SQLite) — list, export, import, undo."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    help="Your collection: list, export (TCGplayer, Collectr, Dragon Shield, cardid), import, undo.",
    no_args_is_help=True,
)
out = Console()

COLLECTION = typer.Option(
    None, "--collection", help="The collection file (default: beside --db, or in your data dir)."
)
DB = typer.Option(None, "--db", help="The reference DB whose catalog names the cards (names, sets, rarity).")


def _open(collection: Path | None):
    from cardid.collection import Collection, default_path

    return Collection(collection or default_path())


def _records(db: Path | None) -> dict:
    if db is None:
        return {}
    from cardid.db.store import CardDB

    return CardDB.load(db, verify_files=False).records


@app.command("list")
def list_cmd(
    collection: Path | None = COLLECTION, db: Path | None = DB, folder: str | None = typer.Option(None)
) -> None:
    """Every row: card, quantity, condition, language, printing, folder, when added."""
    c = _open(collection)
    records = _records(db)
    t = Table(title=f"{c.path}: {c.count()} cards")
    for col in ("row", "card", "name", "qty", "cond", "lang", "printing", "folder", "added"):
        t.add_column(col)
    for r in c.rows(folder):
        name = getattr(records.get(r.card_id), "name", "") or ""
        t.add_row(
            str(r.id),
            r.card_id,
            name,
            str(r.quantity),
            r.condition,
            r.language,
            r.printing,
            r.folder,
            r.added[:10],
        )
    out.print(t)


@app.command("export")
def export_cmd(
    fmt: str = typer.Option(
        "cardid", "--format", help="tcgplayer, collectr, dragonshield, cardid (CSV) or json."
    ),
    out_file: Path = typer.Option(..., "--out", help="The file to write."),
    collection: Path | None = COLLECTION,
    db: Path | None = DB,
) -> None:
    """Write the collection in a format a collection app imports (formula cells neutralised)."""
    from cardid.collection.formats import export
    from cardid.io import write_bytes_atomic

    c = _open(collection)
    text = export(c.rows(), _records(db), fmt)
    write_bytes_atomic(out_file, text.encode("utf-8"))
    out.print(f"[green]{len(c.rows())} rows[/] ({c.count()} cards) → {out_file} ({fmt})")


@app.command("import")
def import_cmd(
    file: Path = typer.Argument(
        ...,
        help="An export: cardid's own (CSV or JSON), or the TCGplayer app's, Collectr's or Dragon Shield's.",
    ),
    collection: Path | None = COLLECTION,
    db: Path | None = DB,
) -> None:
    """Add the rows of an export as one change (`cardid collection undo` takes it back). Another
    app's cards are found in --db's catalog by set and number; a row that names none, or two, stops
    the whole import, naming its line."""
    from cardid.collection.imports import parse_import
    from cardid.errors import CardIDError

    if not file.is_file():
        raise CardIDError(f"no such file: {file}")
    got = parse_import(file.read_text(encoding="utf-8-sig"), _records(db))
    c = _open(collection)
    c.add_many(got.rows)
    out.print(f"[green]imported[/] {len(got.rows)} rows ({got.format}) into {c.path} ({c.count()} cards)")


@app.command("undo")
def undo_cmd(collection: Path | None = COLLECTION, db: Path | None = DB) -> None:
    """Take back the last change (an edit, a removal, a whole import)."""
    ch = _open(collection).undo()
    out.print(
        "nothing to undo" if ch is None else f"[green]{ch.action}[/] ({ch.info.get('edits', 1)} edit(s))"
    )
