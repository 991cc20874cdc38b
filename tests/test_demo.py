import json

import pytest

from cardid.data.layout import read_split
from cardid.pipeline import run_demo

pytestmark = pytest.mark.slow

STAGES = [
    "catalog",
    "duplicates",
    "dataset",
    "preview",
    "teacher",
    "frozen",
    "students",
    "export",
    "db",
    "calibrate",
    "recognition",
    "detection-data",
    "detector",
    "photos",
    "printings",
    "bundle",
]


def test_demo_recipe_runs_every_stage_and_a_rerun_does_nothing(tmp_path):
    out = tmp_path / "demo"
    small = ["dataset.train_views=2", "dataset.val_views=1"]
    res = run_demo(out, cards=6, overrides=small)
    assert [s["name"] for s in res.stages] == STAGES
    m = {s["name"]: s["metrics"] for s in res.stages}
    assert (out / "teacher" / "teacher.safetensors").is_file() and (out / "teacher" / "curves.png").is_file()
    assert m["teacher"]["eval"]["model"]["queries"] == 6 and "phash" in m["teacher"]["eval"]
    assert (out / "students" / "students" / "tiny-cnn" / "tiny-cnn.safetensors").is_file()
    assert m["students"]["best"]["tiny-cnn"]["step"] > 0
    onnx = m["export"]["onnx"]
    assert onnx["fp32"]["passed"] and onnx["fp32"]["top1_agreement"] == 1.0 and {"fp16", "int8"} <= set(onnx)
    db_meta = json.loads((out / "db" / "db" / "db.json").read_text())
    assert db_meta["model"]["format"] == "onnx"  # the DB is built with the deployed artefact
    assert db_meta["calibration"] is None  # calibration wrote its own copy, not the built DB
    assert json.loads((out / "calibrate" / "db" / "db.json").read_text())["calibration"]["fused"]
    rec = m["recognition"]
    assert rec["db_cards"] == 5 and rec["known"] == 5 and rec["unknown"] == 1
    recs = [json.loads(x) for x in (out / "recognition" / "results.jsonl").read_text().splitlines()]
    assert len(recs) == 6
    for r in recs:  # each line says one thing: a match names a card, an unknown card names none
        assert (r["card"] is not None) == (r["decision"] == "match")
        assert (len(r["ambiguous_between"]) >= 2) == (r["decision"] == "ambiguous")
    assert len(list((out / "recognition" / "show").glob("*.png"))) == 6
    assert (
        m["frozen"]["recall@1"] >= 0.5
    )  # frozen packaged weights (cardid[pretrained], locked) see the cards
    assert (
        m["photos"]["photos"] == 4 and m["photos"]["named_on_empty"] == 0
    )  # nothing named on an empty table
    assert len(list((out / "photos").glob("*_annotated.png"))) == 4
    pr = m["printings"]
    assert pr["sets"] >= 4 and pr["strip_wrong"] + pr["number_wrong"] <= 1  # reprints: rarely a wrong name
    assert pr["model_wrong"] <= 1 and pr["printing_model"]["fitted"]["sets"] > 0  # fitted on other cards
    train, idx = read_split(out / "dataset" / "dataset", "train")
    assert idx.num_classes == 6 and len(train) == 12
    assert (out / "preview" / "preview.png").stat().st_size > 10_000
    summary = json.loads((out / "summary.json").read_text())
    assert [s["name"] for s in summary["stages"]] == STAGES

    # nothing changed: every stage is skipped, nothing is rewritten
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and p.name != "summary.json"}
    again = run_demo(out, cards=6, overrides=small)
    assert [s["key"] for s in again.stages] == [s["key"] for s in res.stages]
    assert before == {
        p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and p.name != "summary.json"
    }

    # the bundle serves: the app answers a photo with what the pipeline measured
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient
    from tests.conftest import LOCAL

    from cardid.bundle import load_bundle
    from cardid.serve import create_app

    bundle = load_bundle(out / "bundle" / "demo")
    client = TestClient(base_url=LOCAL, app=create_app(bundle.recognizer()))
    photo = (out / "photos" / "photo_0.jpg").read_bytes()
    r = client.post("/v1/recognize", content=photo, headers={"content-type": "image/jpeg"})
    assert r.status_code == 200 and r.json()["cards"]
