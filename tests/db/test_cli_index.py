import json

import pytest
from tests.conftest import make_tiny_model

from cardid.cli import main
from cardid.fit.calibrate import synthetic_queries
from cardid.images import save_rgb
from cardid.synth.cards import synth_cards


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    cat = synth_cards(root / "cat", n=8, seed=2, height=320, reprint_fraction=0.0)
    model = make_tiny_model(root / "model")
    assert (
        main(
            [
                "index",
                "build",
                "--model",
                str(model),
                "--catalog",
                str(cat.root),
                "--out",
                str(root / "db"),
                "--workers",
                "0",
            ]
        )
        == 0
    )
    images, labels = synthetic_queries(cat, cat.ids[:2], seed=9, presets=("default",))
    paths = []
    for i, im in enumerate(images):
        paths.append(root / f"q{i}.png")
        save_rgb(paths[-1], im)
    return root, cat, model, paths, labels


def _consistent(r: dict) -> bool:
    """A record says one thing: a match names its card, an ambiguous set lists two or more, an
    unknown card names none."""
    named, between = r["card"], r["ambiguous_between"]
    return {
        "match": named is not None and not between,
        "ambiguous": named is None and len(between) >= 2,
        "unknown": named is None and not between,
    }[r["decision"]]


def test_recognize_writes_json_lines_and_pictures(setup, tmp_path):
    root, _, model, paths, labels = setup
    out = tmp_path / "res.jsonl"
    args = ["recognize", *map(str, paths), "--model", str(model), "--db", str(root / "db")]
    assert main([*args, "--json", str(out), "--show", str(tmp_path / "show")]) == 0
    photos = [json.loads(line) for line in out.read_text().splitlines()]
    assert [p["image"] for p in photos] == [str(p) for p in paths]
    assert all(not p["no_card"] and len(p["cards"]) == 1 for p in photos)  # no detector: one crop each
    for r, truth in zip([p["cards"][0] for p in photos], labels, strict=True):
        assert len(r["top"]) == 5 and _consistent(r)
        assert {"card_id", "name", "set_id", "number", "similarity", "inliers"} <= set(r["top"][0])
        assert truth in [t["card_id"] for t in r["top"]]  # 8 cards: the shortlist holds them all
    assert len(list((tmp_path / "show").glob("*.png"))) == len(paths)


def test_bad_inputs_fail_cleanly(setup, tmp_path, capsys):
    root, cat, model, paths, _ = setup
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    db = ["--db", str(root / "db")]
    assert main(["recognize", str(bad), "--model", str(model), *db]) == 1
    assert "corrupt or unsupported image" in capsys.readouterr().err
    other = make_tiny_model(tmp_path / "other", seed=5)
    assert main(["recognize", str(paths[0]), "--model", str(other), *db]) == 1
    assert "was built by model" in capsys.readouterr().err
    empty = tmp_path / "empty.csv"
    empty.write_text("file,card_id\n")
    assert main(["index", "calibrate", "--model", str(model), *db, "--queries", str(empty)]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert f"{empty}: a labelled photo list needs columns ['card_id', 'file'] and at least one row" in err
    assert (
        main(["index", "search", str(paths[0]), "--model", str(model), "--db", str(tmp_path / "nope")]) == 1
    )
    assert "reference DB not found" in capsys.readouterr().err
    # building over an existing DB needs --overwrite, and the DB is left as it was
    before = (root / "db" / "db.json").read_bytes()
    assert (
        main(["index", "build", "--model", str(model), "--catalog", str(cat.root), "--out", str(root / "db")])
        == 1
    )
    assert (root / "db" / "db.json").read_bytes() == before


def test_search_and_calibrate_from_the_cli(setup, capsys):
    root, _, model, paths, _ = setup
    db = ["--model", str(model), "--db", str(root / "db")]
    assert main(["index", "search", str(paths[0]), *db, "--k", "3"]) == 0
    assert "cosine" in capsys.readouterr().out
    assert main(["index", "calibrate", *db, "--cards", "8"]) == 0
    meta = json.loads((root / "db" / "db.json").read_text())
    assert set(meta["calibration"]) == {"embedding", "fused"}
