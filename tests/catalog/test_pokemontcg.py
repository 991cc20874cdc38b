import json

import pytest
from tests.conftest import realdata

from cardid.catalog import Catalog, ClassIndex
from cardid.catalog.pokemontcg import import_pokemontcg, read_pokemontcg
from cardid.errors import CardIDError, CatalogError


def write_tcg(root, sets, cards):
    (root / "sets").mkdir(parents=True)
    (root / "cards" / "en").mkdir(parents=True)
    (root / "sets" / "en.json").write_text(json.dumps(sets))
    for set_id, cs in cards.items():
        (root / "cards" / "en" / f"{set_id}.json").write_text(json.dumps(cs))


SETS = [
    {"id": "xy12", "name": "Evolutions", "series": "XY", "releaseDate": "2016/11/02"},
    {"id": "sv2", "name": "Paldea Evolved", "series": "Scarlet & Violet", "releaseDate": "2023/06/09"},
]


def card(cid, number, **kw):
    return {
        "id": cid,
        "name": f"N{cid}",
        "number": number,
        "supertype": "Pokémon",
        "subtypes": ["Basic"],
        "images": {"small": f"https://img/{cid}.png", "large": f"https://img/{cid}_hires.png"},
        **kw,
    }


def test_tiny_import_records_and_class_index(tmp_path):
    write_tcg(
        tmp_path / "d",
        SETS,
        {"xy12": [card("xy12-1", "1", rarity="Rare")], "sv2": [card("sv2-TG01", "TG01"), card("sv2-2", "2")]},
    )
    cat = import_pokemontcg(tmp_path / "d", tmp_path / "cat")
    assert cat.ids == ["sv2-2", "sv2-TG01", "xy12-1"]
    r = cat["xy12-1"]
    assert (r.set_name, r.series, r.release_date, r.rarity) == ("Evolutions", "XY", "2016-11-02", "Rare")
    assert cat["sv2-TG01"].number == "TG01" and cat["sv2-2"].rarity is None
    assert r.image_url == "https://img/xy12-1_hires.png" and r.image_file == "images/xy12-1.png"
    again = Catalog.load(tmp_path / "cat")
    assert again.ids == cat.ids
    ci = json.loads((tmp_path / "cat" / "class_index.json").read_text())
    assert ci == {
        "class_to_idx": {"sv2-2": 0, "sv2-TG01": 1, "xy12-1": 2},
        "idx_to_class": {"0": "sv2-2", "1": "sv2-TG01", "2": "xy12-1"},
        "num_classes": 3,
    }


def test_set_filter_unknown_set_and_duplicates(tmp_path):
    write_tcg(
        tmp_path / "d", SETS, {"xy12": [card("xy12-1", "1")], "sv2": [card("sv2-1", "1"), card("sv2-1", "1")]}
    )
    assert [r.id for r in read_pokemontcg(tmp_path / "d", ["xy12"])] == ["xy12-1"]
    with pytest.raises(CatalogError, match="unknown set id.*'nope'"):
        read_pokemontcg(tmp_path / "d", ["nope"])
    with pytest.raises(CatalogError, match="duplicate card id 'sv2-1'.*sv2.json"):
        read_pokemontcg(tmp_path / "d")


def test_unreadable_metadata_names_the_file(tmp_path):
    write_tcg(tmp_path / "d", SETS, {"xy12": [card("xy12-1", "1")]})
    (tmp_path / "d" / "cards" / "en" / "sv2.json").write_text("{not json")
    with pytest.raises(CardIDError, match=r"sv2\.json"):
        read_pokemontcg(tmp_path / "d", ["sv2"])


def test_stored_class_index_must_match_metadata(tmp_path):
    write_tcg(tmp_path / "d", SETS, {"xy12": [card("xy12-1", "1"), card("xy12-2", "2")]})
    import_pokemontcg(tmp_path / "d", tmp_path / "cat")
    ClassIndex.from_ids(["xy12-1"]).save(tmp_path / "cat" / "class_index.json")
    with pytest.raises(CatalogError, match="does not match"):
        Catalog.load(tmp_path / "cat")


@pytest.mark.realdata
def test_real_pokemontcg_import(tmp_path):
    data = realdata("pokemon-tcg-data")
    cat = import_pokemontcg(data, tmp_path / "cat", ["sv2", "xy12"])
    assert len(cat) == len(json.loads((data / "cards/en/sv2.json").read_text())) + len(
        json.loads((data / "cards/en/xy12.json").read_text())
    )
    assert cat["sv2-160"].name == "Slakoth" and cat["sv2-160"].set_name == "Paldea Evolved"
    assert all(isinstance(r.number, str) and r.number for r in cat)
    assert cat.class_index.num_classes == len(cat) and list(cat.class_index.idx_to_class) == sorted(cat.ids)


@pytest.mark.realdata
def test_real_full_import_handles_odd_ids(tmp_path):
    cat = import_pokemontcg(realdata("pokemon-tcg-data"), tmp_path / "cat")
    assert len(cat) > 18000
    assert cat["ex10-?"].image_file == "images/ex10-%3F.png"  # filesystem-safe, reversible
    assert any(not r.number.isdigit() for r in cat)
