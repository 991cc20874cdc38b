"""The hostile pass's probes against the collection and its command line: files overwritten,
numbers past SQLite's, imports in other encodings and shapes, a backup imported twice, markup in
values. Each failed before its fix; nothing is lost in any."""

import json

import pytest

from cardid.catalog.records import CardRecord
from cardid.cli import main
from cardid.collection import Collection, CollectionError
from cardid.collection.formats import export
from cardid.collection.imports import decode_export, parse_import

RECORDS = {
    "base1-4": CardRecord(id="base1-4", name="Charizard", set_id="base1", set_name="Base", number="4"),
    "sv2-1": CardRecord(id="sv2-1", name="Flabébé", set_id="sv2", set_name="Paldea Evolved", number="1"),
}


@pytest.fixture
def coll(tmp_path):
    c = Collection(tmp_path / "c.sqlite")
    c.add("base1-4", quantity=2, folder="Binder [/] 1", notes="first")
    c.add("sv2-1", notes="café")
    return c


def _err(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def test_export_never_overwrites_a_file_or_the_collection(coll, tmp_path, capsys):
    args = ["--collection", str(coll.path)]
    for target in (coll.path, coll.path.with_name(coll.path.name + "-wal")):
        assert main(["collection", "export", "--out", str(target), "--overwrite", *args]) == 1
        assert "the collection itself" in _err(capsys)
    other = tmp_path / "notes.txt"
    other.write_text("mine")
    assert main(["collection", "export", "--out", str(other), *args]) == 1
    assert "exists" in _err(capsys) and other.read_text() == "mine"
    assert main(["collection", "export", "--out", str(other), "--overwrite", *args]) == 0
    assert Collection(coll.path).count() == 3  # the collection still opens, whole


def test_quantities_stay_whole_and_bounded(coll):
    for bad in (9223372036854775807, 10**20, 1e30, float("inf"), "Infinity", 2.9, "2.9", True, "1e3", -1, 0):
        with pytest.raises(CollectionError, match="quantity"):
            coll.add("base1-4", quantity=bad)
    assert coll.add("base1-4", quantity=2.0).row.quantity == 2  # 2.0 is a whole number
    coll.add("base1-4", quantity=999_990, folder="x")
    with pytest.raises(CollectionError, match="over 1,000,000"):
        coll.add("base1-4", quantity=11, folder="x")  # merging past the bound: nothing changes
    assert coll.count() == 5 + 999_990
    text = export(coll.rows(), RECORDS, "cardid")
    assert "e+" not in text  # every quantity written as a whole number
    with pytest.raises(CollectionError, match="quantity"):
        coll.add_many([{"card_id": "sv2-1", "quantity": "9223372036854775807"}] * 2)


def test_cardid_export_round_trips_row_for_row_and_a_second_import_is_refused(coll, tmp_path, capsys):
    coll.add("base1-4", quantity=2, folder="Binder [/] 1", notes="second")  # merged: same card, same state
    out = tmp_path / "backup.csv"
    args = ["--collection", str(coll.path)]
    assert main(["collection", "export", "--out", str(out), *args]) == 0
    other = tmp_path / "o.sqlite"
    assert main(["collection", "import", str(out), "--collection", str(other)]) == 0
    strip = lambda rows: [{k: v for k, v in r.to_dict().items() if k != "id"} for r in rows]  # noqa: E731
    assert strip(Collection(other).rows()) == strip(coll.rows())
    # 100 rows, each its own note: all 100 come back (merging kept 1 before)
    many = Collection(tmp_path / "m.sqlite")
    many.add_many([{"card_id": "sv2-1", "notes": f"note {i}"} for i in range(100)], merge=False)
    (tmp_path / "m.csv").write_text(export(many.rows(), RECORDS, "cardid"), encoding="utf-8")
    assert (
        main(["collection", "import", str(tmp_path / "m.csv"), "--collection", str(tmp_path / "n.sqlite")])
        == 0
    )
    assert len(Collection(tmp_path / "n.sqlite").rows()) == 100
    # the same backup again: refused, not doubled
    assert main(["collection", "import", str(out), "--collection", str(other)]) == 1
    assert "already in the collection" in _err(capsys) and Collection(other).count() == coll.count()
    assert main(["collection", "import", str(out), "--collection", str(other), "--again"]) == 0
    assert Collection(other).count() == 2 * coll.count()


def test_imports_in_every_encoding_excel_saves(tmp_path):
    c = Collection(tmp_path / "a.sqlite")
    c.add("sv2-1", folder="Binder é", notes="café")
    text = export(c.rows(), RECORDS, "cardid").lstrip("\ufeff")  # as Excel saves it again
    for enc in ("utf-8", "utf-8-sig", "utf-16", "cp1252"):
        got = parse_import(decode_export(text.encode(enc)), RECORDS)
        assert got.rows[0]["folder"] == "Binder é" and got.rows[0]["notes"] == "café", enc
    with pytest.raises(CollectionError, match="UTF-16"):
        decode_export(b"\xff\xfe\x00")


def test_bad_import_shapes_are_one_clear_error(tmp_path):
    head = "card_id,quantity,condition,language,printing,folder,added,photo,notes"
    cases = {
        f"{head}\nsv2-1,1": "fewer cells",
        f"{head}\nsv2-1,1,NM,English,Normal,,,,,extra": "more cells",
        f"{head}\nsv2-1,1,NM,English,Normal,,,,{'x' * 140_000}": "131,072",
        '{"format": "cardid-collection-export/1", "cards": {"a": 1}}': "must be a list",
        '{"format": "cardid-collection-export/1", "cards": [null]}': "not a row",
        '{"format": "cardid-collection-export/1", "cards": [{"card_id": "sv2-1", "notes": 5}]}': "must be text",
        '{"format": "cardid-collection-export/1", "cards": ' + "[" * 100_000 + "]" * 100_000 + "}": "nested",
        f"{head}\nsv2-1,Infinity,NM,English,Normal,,,,": "quantity",
        f"{head}\nsv2-1,1e30,NM,English,Normal,,,,": "quantity",
    }
    for text, why in cases.items():
        with pytest.raises(CollectionError, match=why):
            got = parse_import(text, RECORDS)
            Collection(tmp_path / "x.sqlite").add_many(got.rows)
    assert Collection(tmp_path / "x.sqlite").count() == 0


def test_dragon_shield_separator_hints(tmp_path):
    body = (
        "Folder Name{s}Quantity{s}Trade Quantity{s}Card Name{s}Set Code{s}Set Name{s}Card Number{s}"
        "Condition{s}Printing{s}Language{s}Price Bought{s}Date Bought\r\n"
        "Trades{s}1{s}0{s}Flabébé{s}SV2{s}Paldea Evolved{s}001{s}Excellent{s}Foil{s}French{s}0.10{s}2026-11-30\r\n"
    )
    for first, sep in (("sep=,", ","), ('"sep=,"', ","), ("sep=;", ";"), ('"sep=;"', ";")):
        got = parse_import(f"{first}\r\n" + body.format(s=sep), RECORDS)
        assert got.rows[0]["card_id"] == "sv2-1" and got.rows[0]["folder"] == "Trades", first


def test_markup_in_values_and_paths_is_printed_as_it_is(coll, tmp_path, capsys, monkeypatch):
    from rich.console import Console

    monkeypatch.setattr("cardid.cli.collection.out", Console(width=250))
    args = ["--collection", str(coll.path)]
    assert main(["collection", "list", *args]) == 0
    assert "Binder [/] 1" in capsys.readouterr().out
    missing = tmp_path / "[bold]typo[/].sqlite"
    assert main(["collection", "list", "--collection", str(missing)]) == 1
    assert "no collection at" in _err(capsys) and not missing.exists()  # never created empty
    assert main(["collection", "undo", "--collection", str(tmp_path / "nope.sqlite")]) == 1
    assert not (tmp_path / "nope.sqlite").exists()


def test_list_pages_a_large_collection(tmp_path, capsys):
    c = Collection(tmp_path / "big.sqlite")
    c.add_many([{"card_id": f"x-{i}"} for i in range(1000)], merge=False)
    assert main(["collection", "list", "--collection", str(c.path), "--limit", "10", "--offset", "20"]) == 0
    out = capsys.readouterr().out
    assert "x-20" in out and "x-29" in out and "x-30" not in out and "rows 21–30 of 1000" in out


def test_redo_from_the_command_line(coll, capsys):
    args = ["--collection", str(coll.path)]
    assert main(["collection", "undo", *args]) == 0 and coll.count() == 2
    assert main(["collection", "redo", *args]) == 0 and coll.count() == 3
    assert main(["collection", "redo", *args]) == 0 and "nothing to redo" in capsys.readouterr().out


def test_an_old_collection_keeps_what_it_undid_undone(tmp_path):
    """A file from before redo: its undone changes are not redone by the first redo."""
    import sqlite3

    c = Collection(tmp_path / "old.sqlite")
    c.add("sv2-1")
    c.add("base1-4")
    c.undo()
    con = sqlite3.connect(c.path)
    con.execute("UPDATE edits SET undone = 1 WHERE undone != 0")  # as the old code wrote it
    con.execute("DELETE FROM meta WHERE key = 'redo'")
    con.execute("DROP TABLE photos")
    con.commit()
    con.close()
    again = Collection(c.path)
    assert again.redo() is None and again.count() == 1 and again.labels() == []
    json.dumps(again.rows()[0].to_dict())
