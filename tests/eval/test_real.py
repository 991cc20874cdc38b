import csv
import json

from tests.conftest import make_tiny_model

from cardid.cli import main
from cardid.fit.calibrate import synthetic_queries
from cardid.images import save_rgb
from cardid.synth.cards import synth_cards


def _mini_realdata(root, tmp_path):
    """The realdata layout (gallery/, gallery.csv, queries-dev/, queries-dev.csv) from synthetic cards."""
    cat = synth_cards(tmp_path / "cat", n=10, seed=8, height=320, reprint_fraction=0)
    (root / "gallery").mkdir(parents=True)
    with open(root / "gallery.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["card_id", "file", "name", "set_id", "number", "rarity"])
        for c in cat.ids:
            save_rgb(root / "gallery" / f"{c}.png", cat.load_image(c))
            r = cat[c]
            w.writerow([c, f"gallery/{c}.png", r.name, r.set_id, r.number, ""])
    images, labels = synthetic_queries(cat, cat.ids[:4], seed=3, presets=("default",))
    (root / "queries-dev").mkdir()
    with open(root / "queries-dev.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "card_id", "kind", "notes"])
        for i, (im, c) in enumerate(zip(images, labels, strict=True)):
            save_rgb(root / "queries-dev" / f"q{i}.jpg", im)
            w.writerow([f"queries-dev/q{i}.jpg", c, "photo_crop", ""])
    return cat


def test_eval_real_reports_every_stage_and_both_baselines(tmp_path, capsys):
    _mini_realdata(tmp_path / "realdata", tmp_path)
    model = make_tiny_model(tmp_path / "model")
    out = tmp_path / "report"
    args = [
        "eval",
        "real",
        "--model",
        str(model),
        "--realdata",
        str(tmp_path / "realdata"),
        "--out",
        str(out),
    ]
    assert main([*args, "--calib-cards", "10"]) == 0
    rep = json.loads((out / "report.json").read_text())
    assert set(rep["stages"]) == {"embedding", "phash", "orb_shortlist", "fused", "orb_brute_force"}
    assert rep["queries"] == 4 and rep["gallery"] == 10
    # verification sees what a random tiny embedding cannot: the fused pipeline finds the cards
    assert rep["stages"]["fused"]["recall@1"] >= rep["stages"]["embedding"]["recall@1"]
    assert rep["stages"]["orb_brute_force"]["recall@1"] == 1.0
    assert sum(rep["decisions"].values()) == 4
    html = (out / "report.html").read_text()
    assert html.count("<img") >= 4 * 6 and "Failures" in html
    assert "fused" in capsys.readouterr().out
