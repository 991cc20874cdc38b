"""`cardid index adapt`: a query adapter fitted on labelled photos, stored hashed with the DB, applied
to every query, removable; bad input refused in one line."""

import numpy as np
import pytest
from tests.conftest import make_tiny_model

from cardid.cli import main
from cardid.db.store import CardDB
from cardid.decision.match import Matcher
from cardid.embed import load_embedder
from cardid.errors import CardIDError, DBError
from cardid.fit.calibrate import synthetic_queries
from cardid.images import save_rgb
from cardid.synth.cards import synth_cards


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("adapt")
    cat = synth_cards(root / "cat", n=12, seed=4, height=320, reprint_fraction=0.4)
    model = make_tiny_model(root / "model")
    db = root / "db"
    assert main(["index", "build", "--model", str(model), "--catalog", str(cat.root), "--out", str(db)]) == 0
    images, labels = synthetic_queries(cat, cat.ids, views=2, seed=5, presets=("default",), crop_width=360)
    rows = ["file,card_id"]
    for i, (im, c) in enumerate(zip(images, labels, strict=True)):
        save_rgb(root / f"p{i}.jpg", im)
        rows.append(f"p{i}.jpg,{c}")
    (root / "photos.csv").write_text("\n".join(rows) + "\n")
    return root, model, db


def test_an_adapter_is_fitted_stored_applied_and_removed(world):
    root, model, db = world
    args = ["index", "adapt", "--model", str(model), "--db", str(db)]
    assert main([*args, "--photos", str(root / "photos.csv"), "--folds", "3"]) == 0
    emb = load_embedder(model, "cpu")
    card_db = CardDB.load(db, emb)
    info = card_db.meta["adapter"]
    assert info["pairs"] == 24 and info["lam"] > 0 and info["source"].endswith("photos.csv")
    assert "adapter.npy" in card_db.meta["files"]  # hashed with the DB's files
    # the printing model, refitted on the photos' printing sets, now decides the printing
    fitted = card_db.calibration["fused"]["printing"]["fitted"]
    assert fitted["real_photos"] == 24 and fitted["real_sets"] > 0 and fitted["simulated_sets"] > 0
    m = Matcher(card_db, emb)
    assert m.printing == "model"
    assert m.adapter is not None and m.adapter.matrix.shape == (card_db.dim, card_db.dim)
    # the query's embedding is mapped before the search
    e = np.asarray(card_db.embeddings[0])
    q = m.query(np.zeros((224, 160, 3), np.uint8), e)
    np.testing.assert_allclose(q.embedding, m.adapter(e[None])[0], rtol=1e-5)
    assert not np.allclose(q.embedding, e)
    np.testing.assert_array_equal(q.raw_embedding, e)  # the printing is weighed on the raw embedding
    # an altered adapter is refused with the DB
    path = db / "adapter.npy"
    good = path.read_bytes()
    np.save(path, np.eye(card_db.dim, dtype=np.float32))
    with pytest.raises(DBError, match="adapter.npy was modified"):
        CardDB.load(db, emb)
    path.write_bytes(good)
    assert main([*args, "--remove"]) == 0
    card_db = CardDB.load(db, emb)
    assert card_db.adapter is None and "adapter.npy" not in card_db.meta["files"]


def test_bad_photo_lists_are_refused_in_one_line(world, capsys):
    root, model, db = world
    (root / "bad.csv").write_text("file,card_id\np0.jpg,not-a-card\n")
    args = ["index", "adapt", "--model", str(model), "--db", str(db)]
    assert main([*args, "--photos", str(root / "bad.csv")]) != 0
    assert "not-a-card" in capsys.readouterr().err
    assert main(args) != 0
    assert "--photos" in capsys.readouterr().err


@pytest.mark.slow  # in `make test`; left out of the edit loop
def test_printing_sets_made_beforehand_fit_exactly_what_adapt_would_make(world, tmp_path, monkeypatch):
    """The pipeline's evaluation saves the simulated printing sets it made on the calibrated DB;
    the adapt stage reads them back instead of rendering and deciding every view again."""
    import shutil

    from cardid.decision.printing import load_printing_sets, save_printing_sets
    from cardid.fit import calibrate as calibrate_mod
    from cardid.fit import photos as adapt_mod

    root, model, db = world
    emb = load_embedder(model, "cpu")
    a, b = shutil.copytree(db, tmp_path / "a"), shutil.copytree(db, tmp_path / "b")
    adapt_mod.adapt_from_photos(model, a, root / "photos.csv", folds=3)
    made = calibrate_mod.printing_sets_on_views(
        CardDB.load(b, emb), emb, CardDB.load(b, emb).gallery(), cards=None
    )
    assert made
    save_printing_sets(tmp_path / "sets.json", made)
    back = load_printing_sets(tmp_path / "sets.json")
    assert back == made  # full precision, truth included

    def not_again(*_a, **_k):
        raise AssertionError("the printing sets were made again")

    monkeypatch.setattr(calibrate_mod, "printing_sets_on_views", not_again)
    adapt_mod.adapt_from_photos(model, b, root / "photos.csv", folds=3, simulated=back)
    fitted = [CardDB.load(d, emb).calibration["fused"]["printing"] for d in (a, b)]
    assert fitted[0] == fitted[1] and fitted[0]["fitted"]["simulated_sets"] == len(made)
    (tmp_path / "bad.json").write_text('{"members": []}')
    with pytest.raises(CardIDError, match="not a list of printing sets"):
        load_printing_sets(tmp_path / "bad.json")
