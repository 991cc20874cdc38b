import csv
import json

import cv2
import numpy as np
import pytest
from tests.conftest import make_tiny_model
from tests.eval.test_real import _mini_realdata

from cardid.cli import main
from cardid.errors import CardIDError
from cardid.eval.photos import threshold_transfer
from cardid.fit.outcomes import note_groups, photo_outcome
from cardid.fit.records import CardRecord, Named, PhotoRecord
from cardid.images import save_rgb
from cardid.synth.surfaces import background


def _on_table(scan, seed, size=(300, 225)):
    rng = np.random.default_rng(seed)
    img = background(rng, *size).copy()
    h = int(size[0] * 0.7)
    w = round(h * 63 / 88)
    card = cv2.resize(scan, (w, h), interpolation=cv2.INTER_AREA)
    y, x = (size[0] - h) // 2, (size[1] - w) // 2
    img[y : y + h, x : x + w] = card
    return img


def _card(kind, cid=None, amb=(), score=1.0, top=()):
    return CardRecord.from_json(
        {
            "decision": kind,
            "card": {"card_id": cid} if kind == "match" else None,
            "ambiguous_between": [{"card_id": a} for a in amb],
            "score": score,
            "top": [{"card_id": c, "score": s} for c, s in top],
        }
    )


def test_photo_outcomes():
    match_a, match_b, unknown = _card("match", "a", score=2.0), _card("match", "b"), _card("unknown")
    assert photo_outcome([match_a], False, "a") == ("correct", match_a)
    # a front+back listing: the back is unknown, the front named
    assert photo_outcome([unknown, match_a], False, "a") == ("correct", match_a)
    # a wrong name anywhere in the photo makes it wrong, and names that card
    assert photo_outcome([match_a, match_b], False, "a") == ("wrong", match_b)
    assert photo_outcome([_card("ambiguous", amb=("a", "c"))], False, "a")[0] == "ambiguous"
    assert photo_outcome([_card("ambiguous", amb=("b", "c"))], False, "a")[0] == "ambiguous_other"
    assert photo_outcome([], True, "a") == ("no_card", None)
    assert photo_outcome([unknown], False, "a") == ("unknown", unknown)
    assert note_groups("thumbnail; landscape listing image") == ["landscape front+back"]
    assert note_groups("German prints; non-English") == ["non-English"] and note_groups("") == ["plain"]


def test_a_photo_record_reads_back_what_it_wrote_and_names_a_malformed_one():
    rec = PhotoRecord("p.jpg", "a", "correct", (_card("match", "a", top=[("a", 2.0), ("b", 1.0)]),), ms=12.5)
    back = PhotoRecord.from_json(json.loads(json.dumps(rec.to_json())))
    assert back == rec and back.cards[0].top[1] == Named("b", 1.0)
    assert back.cards[0].kept(1).to_json()["top"] == [{"card_id": "a", "score": 2.0}]
    with pytest.raises(CardIDError, match="malformed photo record.*'outcome'"):
        PhotoRecord.from_json({"file": "p.jpg", "card_id": "a", "cards": []})
    with pytest.raises(CardIDError, match="malformed card record"):
        CardRecord.from_json({"card": {"card_id": "a"}})


def test_threshold_transfer_reports_both_operating_points():
    per = [PhotoRecord("p", "a", "correct", (_card("unknown", top=[("a", s)]),)) for s in (3.0, 2.5, 2.0)]
    per += [PhotoRecord("q", "a", "wrong", (_card("unknown", top=[("b", 1.0)]),))]
    t = threshold_transfer(per, calibrated=2.8)
    assert t["calibrated"] == {"threshold": 2.8, "precision": 1.0, "recall": 0.25}
    assert t["real_99_precision"]["threshold"] == 2.0 and t["real_99_precision"]["recall"] == 0.75


def test_eval_photos_runs_whole_photos_end_to_end(tmp_path, capsys):
    root = tmp_path / "realdata"
    cat = _mini_realdata(root, tmp_path)
    (root / "photos-dev").mkdir()
    notes = ["eBay listing thumbnail", "German prints; non-English", "landscape listing image", ""]
    with open(root / "photos-dev.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "card_id", "notes"])
        for i, cid in enumerate(cat.ids[:4]):
            save_rgb(root / "photos-dev" / f"p{i}.jpg", _on_table(cat.load_image(cid), i))
            w.writerow([f"photos-dev/p{i}.jpg", cid, notes[i]])
        # a card filling the whole frame: nothing to find, the whole-image fallback names it
        save_rgb(root / "photos-dev" / "full.jpg", cv2.resize(cat.load_image(cat.ids[5]), (215, 300)))
        w.writerow(["photos-dev/full.jpg", cat.ids[5], ""])
    out = tmp_path / "out"
    args = ["eval", "photos", "--model", str(make_tiny_model(tmp_path / "m")), "--realdata", str(root)]
    assert main([*args, "--out", str(out), "--folds", "9"]) == 1  # too few cards: refused before any work
    assert not out.exists()
    assert main([*args, "--out", str(out), "--adapter"]) == 1  # an adapter needs folds to be fitted on
    assert not out.exists()
    assert main([*args, "--out", str(out), "--calib-cards", "10", "--folds", "2", "--adapter"]) == 0
    rep = json.loads((out / "report.json").read_text())
    photos = rep["sets"]["photos-dev"]
    # each fold recognised again with an adapter fitted on the other fold's photos only
    ad = photos["adapter"]
    assert [f["fold"] for f in ad["fits"]] == [0, 1] and ad["photos"] == 5
    assert sorted(p["file"] for p in ad["per_photo"]) == sorted(p["file"] for p in photos["per_photo"])
    assert "printing_model_fitted" in ad["folds"] and "printing_model_fitted" in photos["folds"]
    folds = photos["folds"]  # each card measured in exactly one fold, the figures per fold
    assert sorted(c for f in folds["split"]["cards"] for c in f) == sorted(set(cat.ids[:4]) | {cat.ids[5]})
    assert [f["fold"] for f in folds["per_fold"]] == [0, 1] and sum(
        f["photos"] for f in folds["per_fold"]
    ) == 5
    pr = photos["printing"]
    # verification names every card even with a random tiny model: all 5 are correct, each its
    # own card, the printing exact, the cards ~215 px wide (the 180-260 band)
    assert photos["outcomes"] == {
        "correct": 5,
        "wrong": 0,
        "ambiguous": 0,
        "ambiguous_other": 0,
        "unknown": 0,
        "no_card": 0,
    }
    truth = {f"p{i}.jpg": cid for i, cid in enumerate(cat.ids[:4])} | {"full.jpg": cat.ids[5]}
    assert {p["file"].split("/")[-1]: p["top1"] for p in photos["per_photo"]} == truth
    assert (pr["exact_printing"], pr["wrong_printing"], pr["card_named"]) == (1.0, 0.0, 1.0)
    assert pr["by_width"]["180-260"]["photos"] == 5
    assert set(photos["by_notes"]) == {"plain", "non-English", "landscape front+back"}
    assert rep["sets"]["queries-dev"]["photos"] == 4  # the dev crops, recognised as crops
    assert {"calibrated", "real_99_precision"} <= set(photos["thresholds"])
    per = {p["file"].split("/")[-1]: p for p in photos["per_photo"]}
    assert per["p0.jpg"]["found"] >= 1 and per["p0.jpg"]["fallback"] is None  # the finder sees the card
    assert per["p0.jpg"]["top1"] == cat.ids[0]  # verification names it even with a random tiny model
    html = (out / "report.html").read_text()
    assert "not named correctly" in html and "R@1" in capsys.readouterr().out
    # it leads with what would ship, measured held out: adapter + printing model fitted on the other
    # folds (its figures, then its failures); the first pass follows as a comparison, labelled
    lead = html.index("What ships, on photos-dev held out: adapter + printing model")
    assert (
        lead
        < html.index("Every configuration, for comparison")
        < html.index("photos-dev, as first recognised: printing model fitted on simulated views only")
    )
    shipped_per = ad["folds"]["printing_model_fitted"]["per_photo"]
    assert sorted(p["file"] for p in shipped_per) == sorted(p["file"] for p in photos["per_photo"])
    assert "photos-dev, as shipped: 0 of 5 not named correctly" in html
    # the same photos against that DB as it is (what a pipeline's calibrate stage made), read only:
    # the same decisions, and the DB untouched
    files = {p: p.read_bytes() for p in sorted((out / "db").rglob("*")) if p.is_file()}
    again = tmp_path / "again"
    ok = main([*args, "--out", str(again), "--folds", "2", "--adapter", "--db", str(out / "db")])
    assert ok == 0 and not (again / "db").exists()
    assert {p: p.read_bytes() for p in sorted((out / "db").rglob("*")) if p.is_file()} == files

    def records(report):
        ph = report["sets"]["photos-dev"]
        return [
            {k: v for k, v in p.items() if k != "ms"} for p in ph["per_photo"] + ph["adapter"]["per_photo"]
        ]

    rep2 = json.loads((again / "report.json").read_text())
    assert records(rep2) == records(rep)
    assert rep2["calibration"] == rep["calibration"]
    assert rep2["printing_sets_simulated"] == rep["printing_sets_simulated"]
