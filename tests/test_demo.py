import json

import pytest

from cardid.data.layout import read_split
from cardid.demo import run_demo

pytestmark = pytest.mark.slow


def test_demo_produces_every_stage(tmp_path):
    res = run_demo(tmp_path / "demo", n_cards=6, train_views=2, val_views=1, workers=1)
    assert [s["stage"] for s in res.stages] == [
        "catalog",
        "duplicates",
        "dataset",
        "preview",
        "teacher",
        "pretrained",
        "students",
        "export",
        "recognition",
        "detector",
        "photos",
        "printings",
    ]
    assert (tmp_path / "demo" / "teacher" / "teacher.safetensors").is_file()
    assert res.metrics["teacher"]["model"]["queries"] == 6 and "phash" in res.metrics["teacher"]
    assert (tmp_path / "demo" / "distill" / "students" / "tiny-cnn" / "tiny-cnn.safetensors").is_file()
    assert res.metrics["distill"]["best"]["tiny-cnn"]["step"] > 0
    rec = res.metrics["recognition"]
    assert rec["db_cards"] == 5 and rec["known"] == 5 and rec["unknown"] == 1
    assert set(rec["calibration"]) == {"embedding", "fused"}
    assert res.metrics["export"]["fp32"]["passed"] and res.metrics["export"]["fp32"]["top1_agreement"] == 1.0
    assert {"fp16", "int8"} <= set(res.metrics["export"])
    db_meta = json.loads((tmp_path / "demo" / "db" / "db.json").read_text())
    assert db_meta["model"]["format"] == "onnx"  # the DB is built with the deployed artefact
    lines = (tmp_path / "demo" / "recognize" / "results.jsonl").read_text().splitlines()
    recs = [json.loads(x) for x in lines]
    assert len(recs) == 6
    for r in recs:  # each line says one thing: a match names a card, an unknown card names none
        assert (r["card"] is not None) == (r["decision"] == "match")
        assert (len(r["ambiguous_between"]) >= 2) == (r["decision"] == "ambiguous")
    assert "<img" in (tmp_path / "demo" / "recognize" / "report.html").read_text()
    assert len(list((tmp_path / "demo" / "recognize" / "show").glob("*.png"))) == 6
    if "recall@1" in res.metrics["pretrained"]:  # cardid[pretrained] installed
        assert res.metrics["pretrained"]["recall@1"] >= 0.5  # frozen packaged weights already see the cards
    photos = res.metrics["photos"]
    assert photos["photos"] == 4 and photos["named_on_empty"] == 0  # nothing named on an empty table
    assert len(list((tmp_path / "demo" / "photos").glob("*_annotated.png"))) == 4
    assert (tmp_path / "demo" / "detection" / "pokemon_cards.yaml").is_file()
    pr = res.metrics["printings"]
    assert pr["sets"] >= 4 and pr["strip_wrong"] + pr["number_wrong"] <= 1  # reprints: rarely a wrong name
    if pr["ocr"]:  # tesseract installed: the number tells most printings apart
        assert pr["number_right"] >= pr["sets"] // 2
    assert pr["model_wrong"] <= 1 and pr["printing_model"]["fitted"]["sets"] > 0  # fitted on other cards
    assert (tmp_path / "demo" / "printings" / "report.json").is_file()
    summary = json.loads((tmp_path / "demo" / "summary.json").read_text())
    assert summary["stages"] == res.stages
    train, idx = read_split(tmp_path / "demo" / "dataset", "train")
    assert idx.num_classes == 6 and len(train) == 12
    assert (tmp_path / "demo" / "preview.png").stat().st_size > 10_000
    # a rerun replaces the previous demo instead of failing
    quick = {"teacher_overrides": ["phase1.steps=2", "phase2.steps=4"], "distill_overrides": ["steps=4"]}
    run_demo(tmp_path / "demo", n_cards=4, train_views=1, val_views=1, workers=1, **quick)
    assert read_split(tmp_path / "demo" / "dataset", "train")[1].num_classes == 4
    # the serve command it prints works with what it built: the app answers a photo
    args = res.serve_command.split()
    assert args[:2] == ["cardid", "serve"] and summary["metrics"]["serve_command"] == res.serve_command
    opts = dict(zip(args[2::2], args[3::2], strict=True))
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from cardid.recognize import Recognizer
    from cardid.serve import create_app

    client = TestClient(create_app(Recognizer.open(opts["--model"], opts["--db"], opts["--detector"])))
    photo = (tmp_path / "demo" / "photos" / "photo_0.jpg").read_bytes()
    r = client.post("/v1/recognize", content=photo, headers={"content-type": "image/jpeg"})
    assert r.status_code == 200 and r.json()["cards"]
