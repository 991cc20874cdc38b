"""One physical card, one record, through the recognizer: a card found three times (itself, its art
box, its sleeve) is one record standing for three boxes; two copies side by side stay two; a card's
back is a ``back``, in a photo and given as a crop; a box larger than the photo is dropped."""

import cv2
import numpy as np
import pytest
from tests.conftest import build_index

from cardid.db.backs import load_backs, save_backs
from cardid.db.store import CardDB
from cardid.detect import Detection
from cardid.detect.rectify import orientations, rectify
from cardid.embed import load_embedder
from cardid.recognize import Recognizer
from cardid.synth.objects import card_back
from cardid.synth.surfaces import background


def quad(x, y, w, h):
    return np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], np.float32)


class Boxes:
    """A finder that finds what it is told to."""

    def __init__(self, *quads):
        self.quads = quads

    def detect(self, image):
        return [Detection(q, 0.9) for q in self.quads]


@pytest.fixture(scope="module")
def world(synth_catalog, tmp_path_factory):
    model, db = build_index(tmp_path_factory.mktemp("one"), synth_catalog.root)
    emb = load_embedder(model)
    scan = cv2.resize(
        synth_catalog.load_image(synth_catalog.ids[0]), (150, 210), interpolation=cv2.INTER_AREA
    )
    back = card_back(np.random.default_rng(3), 210, 150)
    photo = background(np.random.default_rng(0), 300, 560).copy()
    photo[40:250, 30:180] = scan  # the card
    photo[40:250, 210:360] = scan  # a second copy of it
    photo[40:250, 390:540] = back  # a card's back
    return emb, CardDB.load(db, emb), photo


def test_a_card_its_art_box_and_its_sleeve_are_one_record(world):
    emb, db, photo = world
    card, art, sleeve = quad(30, 40, 150, 210), quad(45, 65, 120, 90), quad(24, 32, 162, 226)
    rec = Recognizer(Recognizer.open(emb, db).matcher, Boxes(card, art, sleeve), refine=False)
    out = rec.recognize_photo(photo)
    assert len(out.cards) == 1 and out.cards[0].merged == 3
    assert out.cards[0].to_json()["merged"] == 3 and 0 < out.cards[0].plausibility <= 1


def test_two_copies_side_by_side_stay_two_and_a_box_larger_than_the_photo_is_dropped(world):
    emb, db, photo = world
    left, right, huge = quad(30, 40, 150, 210), quad(210, 40, 150, 210), quad(-400, -500, 1300, 1800)
    rec = Recognizer(Recognizer.open(emb, db).matcher, Boxes(left, right, huge), refine=False)
    out = rec.recognize_photo(photo)
    assert len(out.cards) == 2 and [c.merged for c in out.cards] == [1, 1]
    assert out.cards[0].decision.kind == out.cards[1].decision.kind  # the same card, decided alike
    assert out.cards[0].decision.card_id == out.cards[1].decision.card_id


def test_a_cards_back_is_a_back_in_a_photo_and_as_a_crop(world, tmp_path):
    emb, db, photo = world
    import shutil

    root = tmp_path / "db"
    shutil.copytree(db.root, root)
    db2 = CardDB.load(root, emb)
    back_q = quad(390, 40, 150, 210)
    crop = rectify(photo, back_q)
    save_backs(db2, emb.embed(orientations(crop)), threshold=0.95, source="test")
    assert load_backs(CardDB.load(root, emb)).threshold == 0.95
    rec = Recognizer(Recognizer.open(emb, root).matcher, Boxes(quad(30, 40, 150, 210), back_q), refine=False)
    kinds = [c.decision.kind for c in rec.recognize_photo(photo).cards]
    assert kinds[1] == "back" and kinds[0] != "back"
    assert rec.recognize_photo(photo).to_json()["cards"][1]["decision"] == "back"
    as_crop = Recognizer.open(emb, root).recognize_photo(crop)  # given as a card crop
    assert [c.decision.kind for c in as_crop.cards] == ["back"]
    save_backs(CardDB.load(root, emb), None)  # removed: a DB without backs knows none
    assert load_backs(CardDB.load(root, emb)) is None
