import json

import numpy as np
import pytest

from cardid.catalog import Catalog, ClassIndex, card_file_stem
from cardid.data.layout import EmbeddingDataConfig, read_split, write_embedding_dataset
from cardid.errors import CatalogError, ImageError
from cardid.images import load_rgb


@pytest.fixture(scope="module")
def dataset(synth_catalog, tmp_path_factory):
    out = tmp_path_factory.mktemp("ds") / "emb"
    cfg = EmbeddingDataConfig(train_views=3, val_views=2, seed=1)
    return write_embedding_dataset(synth_catalog, out, cfg, workers=2)


def test_layout_matches_the_spec(dataset, synth_catalog):
    for cid in synth_catalog.ids:
        stem = card_file_stem(cid)
        assert sorted(p.name for p in (dataset / "train" / stem).iterdir()) == [
            "000.png",
            "001.png",
            "002.png",
        ]
        assert sorted(p.name for p in (dataset / "val" / stem).iterdir()) == ["000.png", "001.png"]
        assert (dataset / "gallery" / f"{stem}.png").is_file()
    for f in ("class_index.json", "card_metadata.json", "dataset.json", "config.yaml"):
        assert (dataset / f).is_file()
    assert ClassIndex.load(dataset / "class_index.json") == synth_catalog.class_index
    meta = json.loads((dataset / "dataset.json").read_text())
    assert meta["num_cards"] == len(synth_catalog) and meta["crop_size"] == [313, 224]


def test_gallery_catalog_points_at_clean_scans(dataset, synth_catalog):
    gal = Catalog.load(dataset)
    cid = synth_catalog.ids[0]
    np.testing.assert_array_equal(gal.load_image(cid), synth_catalog.load_image(cid))


def test_val_holds_new_views_of_the_same_cards(dataset):
    train, idx = read_split(dataset, "train")
    val, _ = read_split(dataset, "val")
    assert {label for _, label in val} == {label for _, label in train} == set(range(idx.num_classes))
    t0, v0 = load_rgb(train[0][0]), load_rgb(val[0][0])
    assert train[0][1] == val[0][1] and np.abs(t0.astype(int) - v0).mean() > 2


def test_missing_or_unknown_class_folders_are_named(dataset, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(dataset, broken)
    victim = sorted((broken / "val").iterdir())[0]
    shutil.rmtree(victim)
    with pytest.raises(CatalogError, match=f"missing.*{victim.name}"):
        read_split(broken, "val")
    (broken / "train" / "not-a-card").mkdir()
    with pytest.raises(CatalogError, match="not-a-card"):
        read_split(broken, "train")


def test_missing_or_corrupt_scan_fails_before_anything_is_written(synth_catalog, tmp_path):
    import shutil

    cat_dir = tmp_path / "cat"
    shutil.copytree(synth_catalog.root, cat_dir)
    cat = Catalog.load(cat_dir)
    victim = cat.image_path(cat.ids[2])
    victim.unlink()
    with pytest.raises(CatalogError, match="missing"):
        write_embedding_dataset(cat, tmp_path / "out", workers=1)
    victim.write_bytes(b"garbage")
    with pytest.raises(ImageError, match=victim.name):
        write_embedding_dataset(
            cat, tmp_path / "out", EmbeddingDataConfig(train_views=1, val_views=0), workers=1
        )
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]
