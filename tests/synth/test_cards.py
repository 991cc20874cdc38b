import numpy as np
import pytest

from cardid.catalog import Catalog
from cardid.errors import CardIDError
from cardid.preprocess import CARD_ASPECT
from cardid.synth.cards import generate_cards, synth_cards


def test_same_seed_same_cards_and_different_seed_differs():
    a = list(generate_cards(6, seed=1, height=128))
    b = list(generate_cards(6, seed=1, height=128))
    c = list(generate_cards(6, seed=2, height=128))
    assert [r for r, _ in a] == [r for r, _ in b]
    assert all(np.array_equal(x, y) for (_, x), (_, y) in zip(a, b, strict=True))
    assert not np.array_equal(a[0][1], c[0][1])


def test_cards_are_distinct_card_shaped_with_transparent_corners():
    cards = [img for _, img in generate_cards(8, seed=0, height=256, reprint_fraction=0.0)]
    h, w, ch = cards[0].shape
    assert ch == 4 and abs(w / h - 63 / 88) < 0.01
    assert cards[0][0, 0, 3] == 0 and cards[0][h // 2, w // 2, 3] == 255
    for i in range(len(cards)):
        for j in range(i + 1, len(cards)):
            assert np.abs(cards[i][..., :3].astype(int) - cards[j][..., :3]).mean() > 10


def test_reprints_share_art_but_are_different_cards():
    recs = list(generate_cards(40, seed=0, height=256, reprint_fraction=0.5))
    by_id = {r.id: (r, img) for r, img in recs}
    reprints = [(r, img) for r, img in recs if r.reprint_of]
    assert len(reprints) >= 10
    r, img = reprints[0]
    base_rec, base_img = by_id[r.reprint_of]
    assert r.art_id == base_rec.art_id and r.name == base_rec.name and r.id != base_rec.id
    art = slice(60, 120), slice(40, 140)  # inside the art window
    assert np.abs(img[art].astype(int) - base_img[art]).mean() < 1
    assert not np.array_equal(img, base_img)  # number (and maybe frame) differ


def test_synth_cards_writes_a_loadable_catalog(tmp_path):
    cat = synth_cards(tmp_path / "c", n=5, seed=0, height=128)
    again = Catalog.load(tmp_path / "c")
    assert again.ids == cat.ids and len(cat) == 5
    img = again.load_image(cat.ids[0])
    assert img.shape[2] == 3 and tuple(img[0, 0]) == (255, 255, 255)  # corners composited
    with pytest.raises(CardIDError, match="not empty"):
        synth_cards(tmp_path / "c", n=5)


def test_stand_in_scans_are_deterministic_per_card_and_differ_between_cards():
    from cardid.catalog.records import CardRecord
    from cardid.synth.cards import render_stand_in

    a = CardRecord(
        id="sv1-12", name="Pikachu ex", set_id="sv1", number="12", rarity="Special Illustration Rare"
    )
    b = a.model_copy(update={"id": "sv1-13", "number": "13"})
    img = render_stand_in(a, total=198, height=256)
    assert img.shape == (256, round(256 * CARD_ASPECT), 4) and img.dtype == np.uint8
    np.testing.assert_array_equal(img, render_stand_in(a, total=198, height=256))
    assert np.abs(img.astype(int) - render_stand_in(b, total=198, height=256)).mean() > 10
