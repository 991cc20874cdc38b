import numpy as np
import pytest
from tests.conftest import realdata

from cardid.catalog import Catalog, card_file_stem, card_id_from_stem
from cardid.catalog.folder import catalog_from_folder
from cardid.errors import CatalogError
from cardid.images import save_rgb


def scans(folder, names):
    folder.mkdir(parents=True, exist_ok=True)
    for i, n in enumerate(names):
        save_rgb(folder / n, np.full((40, 28, 3), 20 * i, np.uint8))


def test_folder_catalog_ids_from_file_names(tmp_path):
    scans(tmp_path / "g", ["sv2-1.png", "sv2-TG01.jpg", f"{card_file_stem('ex10-?')}.png"])
    (tmp_path / "g" / "notes.txt").write_text("ignored")
    cat = catalog_from_folder(tmp_path / "g", tmp_path / "cat")
    assert cat.ids == ["ex10-?", "sv2-1", "sv2-TG01"]
    assert (cat["sv2-TG01"].set_id, cat["sv2-TG01"].number) == ("sv2", "TG01")
    again = Catalog.load(tmp_path / "cat")
    assert again.load_image("sv2-1").shape == (40, 28, 3)


def test_in_place_catalog_uses_relative_paths(tmp_path):
    scans(tmp_path / "g", ["a-1.png"])
    cat = catalog_from_folder(tmp_path / "g")
    assert Catalog.load(tmp_path / "g")["a-1"].image_file == "a-1.png"
    assert cat.root == tmp_path / "g"


def test_csv_metadata(tmp_path):
    scans(tmp_path / "g", ["sv2-1.png"])
    (tmp_path / "m.csv").write_text("card_id,name,set_id,number,rarity\nsv2-1,Hoppip,sv2,1,Common\n")
    cat = catalog_from_folder(tmp_path / "g", tmp_path / "cat", metadata_csv=tmp_path / "m.csv")
    assert (cat["sv2-1"].name, cat["sv2-1"].rarity) == ("Hoppip", "Common")


def test_duplicate_id_and_empty_folder_are_errors(tmp_path):
    scans(tmp_path / "g", ["sv2-1.png", "sv2-1.jpg"])
    with pytest.raises(CatalogError, match="duplicate card id 'sv2-1'"):
        catalog_from_folder(tmp_path / "g", tmp_path / "cat")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CatalogError, match="no images"):
        catalog_from_folder(tmp_path / "empty")
    with pytest.raises(CatalogError, match="not found"):
        catalog_from_folder(tmp_path / "missing")


def test_stems_round_trip():
    for cid in ["sv2-1", "ex10-?", "ex10-!", "swshp-SWSH001", "a/b"]:
        assert card_id_from_stem(card_file_stem(cid)) == cid
        assert "/" not in card_file_stem(cid) and "?" not in card_file_stem(cid)


@pytest.mark.realdata
def test_real_gallery_folder(tmp_path):
    cat = catalog_from_folder(
        realdata("gallery"),
        tmp_path / "cat",
        metadata_csv=realdata("gallery.csv"),
        pokemontcg_dir=realdata("pokemon-tcg-data"),
    )
    assert len(cat) == 884
    r = cat["sv2-160"]
    assert (r.name, r.set_id, r.number, r.set_name) == ("Slakoth", "sv2", "160", "Paldea Evolved")
    assert cat.load_image("sv2-160").shape[2] == 3
