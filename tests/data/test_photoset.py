"""Labelled real photos: one loader, and every bad list refused with one line before any work."""

import pytest
from PIL import Image

from cardid.data.photoset import load_photo_set
from cardid.errors import CardIDError


def _photos(tmp_path, n=4):
    for i in range(n):
        Image.new("RGB", (40, 56), (10 * i, 20, 30)).save(tmp_path / f"p{i}.jpg")


def _csv(tmp_path, body, header="file,card_id,notes"):
    p = tmp_path / "photos.csv"
    p.write_text(header + "\n" + body)
    return p


def test_a_list_is_read_with_paths_relative_to_it(tmp_path):
    _photos(tmp_path)
    csv = _csv(tmp_path, "p0.jpg,base1-4,slab\np1.jpg,base1-4,\np2.jpg,xy12-11,non-English\n")
    s = load_photo_set(csv, known_cards={"base1-4", "xy12-11"})
    assert (
        len(s) == 3 and s.paths[0] == tmp_path / "p0.jpg" and s.card_ids == ["base1-4", "base1-4", "xy12-11"]
    )
    assert s.cards() == ["base1-4", "xy12-11"] and s.photos[0].notes == "slab"
    assert s.of_cards(["xy12-11"]).card_ids == ["xy12-11"]
    assert s.sample(2, seed=1).paths == s.sample(2, seed=1).paths and len(s.sample(2)) == 2
    assert s.rows()[2] == {"path": str(tmp_path / "p2.jpg"), "card_id": "xy12-11", "notes": "non-English"}


@pytest.mark.parametrize(
    "body,words",
    [
        ("p0.jpg,base1-4,\np9.jpg,base1-4,\n", "1 listed photo(s) are missing"),
        ("p0.jpg,base1-4,\np0.jpg,base1-5,\n", "listed twice"),
        ("p0.jpg,base1-4,\n./p0.jpg,base1-5,\n", "is listed twice (lines 2 and 3"),
        ("p0.jpg,,\n", "line 2: no card_id"),
        ("p0.jpg,base1-4,\nbad.jpg,base1-4,\n", "not readable images, e.g."),
        (
            "p0.jpg,base1-4,\np1.jpg,sv9-999,\np2.jpg,sv9-999,\n",
            "2 photo(s) of 1 card id(s) that the gallery does not hold, e.g. sv9-999",
        ),
    ],
)
def test_bad_lists_are_one_clear_line(tmp_path, body, words):
    _photos(tmp_path)
    (tmp_path / "bad.jpg").write_bytes(b"not a jpeg at all")
    with pytest.raises(CardIDError, match=None) as e:
        load_photo_set(_csv(tmp_path, body), known_cards={"base1-4", "base1-5"})
    assert words in str(e.value) and "\n" not in str(e.value)


def test_a_list_without_its_columns_is_refused(tmp_path):
    _photos(tmp_path)
    with pytest.raises(CardIDError, match=r"needs columns \['card_id', 'file'\]"):
        load_photo_set(_csv(tmp_path, "p0.jpg,base1-4\n", header="path,card"))
