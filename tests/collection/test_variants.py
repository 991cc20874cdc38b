"""The variants a collector records (edition stamp × finish), those that can exist for a card, and
each app's words for them: every app's export imports back with every field it carries."""

import pytest

from cardid.catalog.records import CardRecord
from cardid.collection import Collection, CollectionError
from cardid.collection.formats import BOM, export
from cardid.collection.imports import parse_import
from cardid.collection.variants import PRINTINGS, from_app, split, to_app, variants_for


def _rec(cid, name, set_name, rarity=None, date=None):
    set_id, number = cid.rsplit("-", 1)
    return cid, CardRecord(
        id=cid, name=name, set_id=set_id, set_name=set_name, number=number, rarity=rarity, release_date=date
    )


RECORDS = dict(
    [
        _rec("base1-4", "Charizard", "Base", "Rare Holo", "1999/01/09"),
        _rec("base1-58", "Pikachu", "Base", "Common", "1999/01/09"),
        _rec("sv3pt5-1", "Bulbasaur", "151", "Common", "2023/09/22"),
        _rec("sv3pt5-6", "Charizard ex", "151", "Double Rare", "2023/09/22"),
        _rec("xy12-11", "Charizard", "Evolutions", "Rare Holo", "2016/11/02"),
        _rec("sv2-1", "Flabébé", "Paldea Evolved"),
    ]
)


def test_the_vocabulary_keeps_every_earlier_word_and_names_each_variant_once():
    old = (
        "Normal",
        "Holofoil",
        "Reverse Holofoil",
        "1st Edition",
        "1st Edition Holofoil",
        "Unlimited",
        "Unlimited Holofoil",
    )
    assert set(old) <= set(PRINTINGS) and len(set(PRINTINGS)) == len(PRINTINGS) == 13
    assert split("Shadowless") == ("Shadowless", "Normal") and split("Master Ball Reverse Holofoil") == (
        "",
        "Master Ball Reverse Holofoil",
    )


def test_only_the_variants_that_can_exist_for_a_card_are_offered():
    assert variants_for(RECORDS["base1-4"]) == [
        "1st Edition Holofoil",
        "Shadowless Holofoil",
        "Unlimited Holofoil",
    ]
    assert variants_for(RECORDS["base1-58"]) == ["1st Edition", "Shadowless", "Unlimited"]
    assert variants_for(RECORDS["sv3pt5-1"]) == [
        "Normal",
        "Reverse Holofoil",
        "Poké Ball Reverse Holofoil",
        "Master Ball Reverse Holofoil",
        "Cosmos Holofoil",
        "Cracked Ice Holofoil",
    ]
    assert variants_for(RECORDS["sv3pt5-6"]) == ["Holofoil"]  # an ex: holo only
    assert variants_for(RECORDS["xy12-11"]) == [
        "Holofoil",
        "Reverse Holofoil",
        "Cosmos Holofoil",
        "Cracked Ice Holofoil",
    ]
    unknown = [p for p in PRINTINGS if not split(p)[0]]
    assert variants_for(RECORDS["sv2-1"]) == unknown  # no rarity, no date: every finish
    assert variants_for(None) == list(PRINTINGS)


def test_each_apps_words_read_back():
    cases = {
        ("tcgcollector", "1st Edition Holo"): "1st Edition Holofoil",
        ("tcgcollector", "Poké Ball Reverse Holo"): "Poké Ball Reverse Holofoil",
        ("tcgplayer", "Poke Ball Reverse Holofoil"): "Poké Ball Reverse Holofoil",
        ("dragonshield", "Foil"): "Holofoil",
        ("dragonshield", "Reverse Holo"): "Reverse Holofoil",
        ("collectr", "reverse-holofoil"): "Reverse Holofoil",
        ("tcgcollector", "Shadowless"): "Shadowless",
    }
    for (fmt, word), printing in cases.items():
        assert from_app(fmt, word) == printing, (fmt, word)
    assert from_app("tcgplayer", "Gold Star Sparkle") is None
    for fmt in ("tcgplayer", "collectr", "tcgcollector"):  # these carry every variant
        assert [from_app(fmt, to_app(fmt, p)) for p in PRINTINGS] == list(PRINTINGS)


#: what each app's export carries of a row (besides its card), as it comes back
CARRIED = {
    "tcgplayer": ("quantity", "condition", "printing", "language"),
    "collectr": ("quantity", "condition", "printing", "folder", "notes"),
    "dragonshield": ("quantity", "condition", "printing", "language", "folder"),
    "tcgcollector": ("quantity", "condition", "printing", "language", "notes"),
}
ROWS = [
    {
        "card_id": "base1-4",
        "quantity": 2,
        "condition": "LP",
        "printing": "Shadowless Holofoil",
        "language": "German",
        "folder": "Binder 1",
        "notes": "from my brother",
    },
    {
        "card_id": "sv3pt5-1",
        "quantity": 3,
        "printing": "Master Ball Reverse Holofoil",
        "language": "English",
        "folder": "Binder 2",
        "notes": "=1+1",
    },
    {
        "card_id": "xy12-11",
        "quantity": 1,
        "condition": "MP",
        "printing": "Cosmos Holofoil",
        "language": "French",
    },
    {"card_id": "sv3pt5-6", "quantity": 4, "printing": "Holofoil"},
]
#: what an app cannot say: its word for a variant is shared (Dragon Shield: Foil, Reverse Holo)
LOSSY = {
    "dragonshield": {
        "Shadowless Holofoil": "Holofoil",
        "Master Ball Reverse Holofoil": "Reverse Holofoil",
        "Cosmos Holofoil": "Holofoil",
    }
}


@pytest.mark.parametrize("fmt", list(CARRIED))
def test_every_apps_export_imports_back_with_every_field_it_carries(tmp_path, fmt):
    c = Collection(tmp_path / "c.sqlite")
    c.add_many(ROWS, merge=False)
    text = export(c.rows(), RECORDS, fmt)
    got = parse_import(text, RECORDS)
    assert got.format == fmt and len(got.rows) == len(ROWS)
    back = Collection(tmp_path / "back.sqlite")
    back.add_many(got.rows, merge=False)
    for want, row in zip(c.rows(), back.rows(), strict=True):
        assert row.card_id == want.card_id
        for field in CARRIED[fmt]:
            expect = getattr(want, field)
            if field == "printing":
                expect = LOSSY.get(fmt, {}).get(expect, expect)
            assert getattr(row, field) == expect, (fmt, field)


def test_a_tcg_collector_file_as_the_site_writes_it():
    text = BOM + (
        "TCG region,Card name,Card number,Card number sorting order,Expansion,Rarity,Card variant,Card language,"
        "Card condition,Quantity,Price,Total price,Note\r\n"
        "International,Charizard,004/102,4,Base,Rare Holo,1st Edition Holo,English,Near Mint,1,350.00,350.00,graded soon\r\n"
        "International,Bulbasaur,001/165,1,151,Common,Poké Ball Reverse Holo,Japanese,Light Played,2,,,\r\n"
    )
    rows = parse_import(text, RECORDS).rows
    assert rows == [
        {
            "card_id": "base1-4",
            "quantity": "1",
            "condition": "NM",
            "printing": "1st Edition Holofoil",
            "language": "English",
            "notes": "graded soon",
        },
        {
            "card_id": "sv3pt5-1",
            "quantity": "2",
            "condition": "LP",
            "printing": "Poké Ball Reverse Holofoil",
            "language": "Japanese",
        },
    ]
    with pytest.raises(CollectionError, match="line 2: Charizard.*printing 'Sparkle Holo'"):
        parse_import(text.replace("1st Edition Holo,", "Sparkle Holo,"), RECORDS)
