"""A card's back learned: candidates that agree are kept, a lone one is left out; the command stores
the backs and their threshold with the DB and says what it fitted; bad input is one clear line."""

import shutil

import numpy as np
import pytest
from tests.conftest import build_index

from cardid.cli import main
from cardid.db.backs import load_backs
from cardid.db.store import CardDB
from cardid.embed import load_embedder
from cardid.errors import CardIDError
from cardid.fit.backs import agreeing
from cardid.images import save_rgb
from cardid.synth.objects import card_back


def test_candidates_that_agree_are_the_back():
    a, b = np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])
    near_a = np.array([0.9, np.sqrt(1 - 0.81), 0.0])
    # three crops, each both ways up: two close to one another (0.9), one apart
    emb = np.stack([[a, -a], [near_a, -near_a], [b * 0 + np.array([0.0, 0.0, 1.0])] * 2])
    assert agreeing(emb, 0.75) == [0, 1]
    assert agreeing(emb, 0.95) == []
    # a crop agreeing with another only once turned is still one of them
    assert agreeing(np.stack([[a, -a], [-a, a]]), 0.99) == [0, 1]


def test_index_backs_stores_them_and_says_so(synth_catalog, tmp_path, capsys):
    model, db = build_index(tmp_path, synth_catalog.root)
    ref = tmp_path / "back.png"
    save_rgb(ref, card_back(np.random.default_rng(0), 352, 252))
    assert main(["index", "backs", "--model", str(model), "--db", str(db), "--image", str(ref)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "card backs stored" in out and "1 reference crop(s) of 1 from 1 reference image" in out
    backs = load_backs(CardDB.load(db, load_embedder(model)))
    assert backs.embeddings.shape[0] == 2 and 0 < backs.threshold < 1  # the crop both ways up
    assert backs.info["files"] == [str(ref)]  # what it was cut from, so that it is not measured
    cards = len(CardDB.load(db, load_embedder(model)))
    assert backs.info["card_views"] == 2 * min(200, cards) and backs.info["back_views"] == 8
    assert backs.info["card_views_max_cosine"] < backs.threshold < backs.info["back_views_p5_cosine"] or (
        backs.info["back_views_p5_cosine"] <= backs.info["card_views_max_cosine"]
    )
    assert main(["index", "backs", "--model", str(model), "--db", str(db), "--remove"]) == 0
    assert load_backs(CardDB.load(db, load_embedder(model))) is None
    # a changed backs.npy is caught by the DB's file hashes
    assert main(["index", "backs", "--model", str(model), "--db", str(db), "--image", str(ref)]) == 0
    copy = tmp_path / "copy"
    shutil.copytree(db, copy)
    np.save(copy / "backs.npy", np.zeros((2, 4), np.float32))
    with pytest.raises(CardIDError):
        CardDB.load(copy, load_embedder(model))
    assert main(["index", "backs", "--model", str(model), "--db", str(db)]) == 1
    assert "give reference images" in capsys.readouterr().err
