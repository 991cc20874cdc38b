"""Exports checked cell by cell, formula injection included; cardid's own export round-trips exactly."""

import csv
import io
import json

import pytest

from cardid.catalog.records import CardRecord
from cardid.cli import main
from cardid.collection import Collection, CollectionError
from cardid.collection.formats import BOM, export, neutralise, restore
from cardid.collection.imports import parse_import

RECORDS = {
    "base1-4": CardRecord(
        id="base1-4", name="Charizard", set_id="base1", set_name="Base", number="4", rarity="Rare Holo"
    ),
    "sv2-1": CardRecord(
        id="sv2-1", name="Flabébé", set_id="sv2", set_name="Paldea Evolved", number="1", rarity="Common"
    ),
    "evil-1": CardRecord(
        id="evil-1",
        name='=HYPERLINK("http://x","y")',
        set_id="evil",
        set_name="+cmd|' /C calc'!A0",
        number="-1",
        rarity="@SUM(1)",
    ),
}


@pytest.fixture
def coll(tmp_path):
    c = Collection(tmp_path / "c.sqlite")
    c.add(
        "base1-4",
        quantity=2,
        condition="LP",
        printing="Holofoil",
        folder="Binder 1",
        added="2026-12-01T10:00:00+00:00",
    )
    c.add("sv2-1", language="French", notes="pulled\tfrom a pack")
    c.add("evil-1", notes="=1+1", folder="-folder")
    return c


def rows_of(text, skip=0):
    return list(csv.reader(io.StringIO(text.lstrip(BOM))))[skip:]


def test_tcgplayer_export_cell_by_cell(coll):
    text = export(coll.rows(), RECORDS, "tcgplayer")
    assert text.startswith(BOM)  # Excel reads é only with it
    head, *rows = rows_of(text)
    assert head == ["Quantity", "Name", "Simple Name", "Set", "Card Number", "Set Code", "Printing", "Condition",
                    "Language", "Rarity", "Product ID", "SKU"]  # fmt: skip
    assert rows[0] == [
        "2",
        "Charizard",
        "Charizard",
        "Base",
        "4",
        "BASE1",
        "Holofoil",
        "Lightly Played",
        "English",
        "Rare Holo",
        "",
        "",
    ]
    assert rows[1][:3] == ["1", "Flabébé", "Flabebe"] and rows[1][8] == "French"


def test_collectr_and_dragonshield_exports(coll):
    head, *rows = rows_of(export(coll.rows(), RECORDS, "collectr", today="2026-12-05"))
    assert head[11] == "Market Price (As of 2026-12-05)" and len(head) == 16
    assert rows[0][:11] == [
        "Binder 1",
        "Pokemon",
        "Base",
        "Charizard",
        "4",
        "Rare Holo",
        "Holofoil",
        "Ungraded",
        "Lightly Played",
        "",
        "2",
    ]
    assert rows[0][14] == "2026-12-01"
    text = export(coll.rows(), RECORDS, "dragonshield")
    assert text.startswith("sep=,\r\n") and not text.startswith(BOM)
    head, *rows = rows_of(text, skip=1)
    assert head[:4] == ["Folder Name", "Quantity", "Trade Quantity", "Card Name"] and len(head) == 15
    assert rows[0][:10] == [
        "Binder 1",
        "2",
        "0",
        "Charizard",
        "BASE1",
        "Base",
        "4",
        "LightlyPlayed",
        "Foil",
        "English",
    ]


@pytest.mark.parametrize("fmt", ["tcgplayer", "collectr", "dragonshield", "cardid"])
def test_no_export_has_a_formula_cell(coll, fmt):
    rows = rows_of(export(coll.rows(), RECORDS, fmt), skip=1 if fmt == "dragonshield" else 0)
    cells = [c for r in rows for c in r]
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")]
    assert '\'=HYPERLINK("http://x","y")' in cells and "'+cmd|' /C calc'!A0" in cells


def test_neutralise_and_restore():
    for v in ("=1+1", "+1", "-1", "@x", "\tx", "\rx", "'=x", "'quoted", "plain", ""):
        assert restore(neutralise(v)) == v
    assert neutralise("=1+1") == "'=1+1" and neutralise("O'Brien") == "O'Brien"


def test_cardids_own_export_round_trips_exactly(coll, tmp_path):
    for fmt in ("cardid", "json"):
        text = export(coll.rows(), RECORDS, fmt)
        fresh = Collection(tmp_path / f"{fmt}.sqlite")
        got = parse_import(text, RECORDS)
        assert got.format == fmt
        fresh.add_many(got.rows)
        keep = (
            "card_id",
            "quantity",
            "condition",
            "language",
            "printing",
            "folder",
            "added",
            "photo",
            "notes",
        )
        got = [{k: getattr(r, k) for k in keep} for r in fresh.rows()]
        assert got == [{k: getattr(r, k) for k in keep} for r in coll.rows()], fmt


def test_imports_that_cannot_be_trusted_are_refused_whole(coll, tmp_path):
    text = export(coll.rows(), RECORDS, "cardid")
    others = {k: v for k, v in RECORDS.items() if k != "evil-1"}
    with pytest.raises(CollectionError, match="1 unknown card id.*evil-1; nothing was imported"):
        parse_import(text, others)
    with pytest.raises(CollectionError, match="unknown column.*'Price'"):
        parse_import(text.replace("card_id,", "card_id,Price,", 1), RECORDS)
    with pytest.raises(CollectionError, match="not a cardid collection export"):
        parse_import(json.dumps({"cards": []}), RECORDS)
    with pytest.raises(CollectionError, match="not an export cardid reads"):
        parse_import("Foo,Bar\r\n1,2\r\n", RECORDS)
    tcg = export(coll.rows(), RECORDS, "tcgplayer")
    with pytest.raises(CollectionError, match="finds its cards in the catalog: give --db"):
        parse_import(tcg, None)
    # a row naming no card of the catalog, an unknown printing: the lines named, nothing kept
    no_flabebe = {k: v for k, v in RECORDS.items() if k != "sv2-1"}
    with pytest.raises(
        CollectionError,
        match=r"2 row\(s\) of the tcgplayer export.*line 2: Charizard.*printing 'Shiny'.*line 3: Flabébé.*no such card",
    ):
        parse_import(tcg.replace("Holofoil", "Shiny"), no_flabebe)


def _kept(rows, *fields):
    return sorted(tuple(getattr(r, f) for f in fields) for r in rows)


@pytest.mark.parametrize(
    "fmt,fields",
    [
        ("tcgplayer", ("card_id", "quantity", "condition", "language", "printing")),
        ("collectr", ("card_id", "quantity", "condition", "printing", "folder", "notes")),
        ("dragonshield", ("card_id", "quantity", "condition", "printing", "language", "folder")),
    ],
)
def test_another_apps_export_imports_back_by_set_and_number(coll, tmp_path, fmt, fields):
    """What each app's file says of a card comes back: the card found by set and number, and
    every field the format carries (formula-looking names included, as text)."""
    got = parse_import(export(coll.rows(), RECORDS, fmt), RECORDS)
    assert got.format == fmt
    fresh = Collection(tmp_path / "fresh.sqlite")
    fresh.add_many(got.rows)
    assert _kept(fresh.rows(), *fields) == _kept(coll.rows(), *fields)


def test_files_written_by_the_apps_themselves():
    """The apps' own spellings: a set named, not coded; numbers as 004/102; conditions with the
    finish after them; Dragon Shield's words; two cards sharing set and number told apart by name."""
    records = RECORDS | {
        "base1-4b": CardRecord(id="base1-4b", name="Charmander", set_id="base1", set_name="Base", number="4")
    }
    tcg = (
        "Quantity,Name,Simple Name,Set,Card Number,Set Code,Printing,Condition,Language,Rarity,Product ID,SKU\r\n"
        "3,Charizard,Charizard,Base,004/102,,Holofoil,Near Mint Holofoil,English,Holo Rare,42,4242\r\n"
    )
    assert parse_import(tcg, records).rows == [
        {
            "card_id": "base1-4",
            "quantity": "3",
            "condition": "NM",
            "printing": "Holofoil",
            "language": "English",
        }
    ]
    ds = (
        "sep=,\r\nFolder Name,Quantity,Trade Quantity,Card Name,Set Code,Set Name,Card Number,Condition,"
        "Printing,Language,Price Bought,Date Bought\r\n"
        "Trades,1,0,Flabébé,SV2,Paldea Evolved,001,Excellent,Foil,French,0.10,2026-11-30\r\n"
    )
    assert parse_import(ds, records).rows == [
        {
            "card_id": "sv2-1",
            "quantity": "1",
            "condition": "LP",
            "printing": "Holofoil",
            "language": "French",
            "folder": "Trades",
            "added": "2026-11-30",
        }
    ]
    with pytest.raises(CollectionError, match="line 2: Charizard.*one of base1-4, base1-4b"):
        parse_import(tcg.replace("Charizard,Charizard", "Charizard EX,Charizard EX"), records)


def test_collection_cli_export_import_undo(coll, tmp_path, capsys):
    out = tmp_path / "x.csv"
    args = ["--collection", str(coll.path)]
    assert main(["collection", "export", "--format", "cardid", "--out", str(out), *args]) == 0
    other = tmp_path / "other.sqlite"
    assert main(["collection", "import", str(out), "--collection", str(other)]) == 0
    assert Collection(other).count() == coll.count() == 4
    assert main(["collection", "undo", "--collection", str(other)]) == 0
    assert Collection(other).count() == 0  # the import was one change
    assert main(["collection", "list", *args]) == 0 and "Binder 1" in capsys.readouterr().out
    assert main(["collection", "export", "--format", "xml", "--out", str(out), *args]) == 1
    assert "unknown export format 'xml'" in capsys.readouterr().err
    assert (
        main(["collection", "export", "--format", "tcgplayer", "--out", str(out), "--overwrite", *args]) == 0
    )
    assert main(["collection", "import", str(out), "--collection", str(other)]) == 1
    assert "give --db" in capsys.readouterr().err and Collection(other).count() == 0
