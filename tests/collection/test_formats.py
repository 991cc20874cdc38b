"""Exports checked cell by cell, formula injection included; cardid's own export round-trips exactly."""

import csv
import io
import json

import pytest

from cardid.catalog.records import CardRecord
from cardid.cli import main
from cardid.collection import Collection, CollectionError
from cardid.collection.formats import BOM, export, neutralise, parse_import, restore

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
        fresh.add_many(parse_import(text, lambda c: c in RECORDS))
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
    with pytest.raises(CollectionError, match="1 unknown card id.*evil-1; nothing was imported"):
        parse_import(text, lambda c: c != "evil-1")
    with pytest.raises(CollectionError, match="unknown column.*'Simple Name'"):
        parse_import(export(coll.rows(), RECORDS, "tcgplayer"), lambda c: True)
    with pytest.raises(CollectionError, match="not a cardid collection export"):
        parse_import(json.dumps({"cards": []}), lambda c: True)


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
