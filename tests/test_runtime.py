"""The deployed path is torch-free: recognising and serving with an ONNX student and an ONNX card
finder import no training library (torch, ultralytics, timm, transformers) and none of cardid's
training-side packages (models, train, synth, data). Checked in a fresh interpreter."""

import json
import subprocess
import sys

import pytest
from tests.conftest import constant_obb_onnx, make_tiny_model

pytest.importorskip("fastapi")

SCRIPT = """
import io, json, sys
from PIL import Image
from cardid.images import load_rgb
from cardid.recognize import Recognizer
from cardid.serve import create_app
from fastapi.testclient import TestClient

model, db, finder, scan = sys.argv[1:5]
rec = Recognizer.open(model, db, finder)
photo = load_rgb(scan)
result = rec.recognize_photo(photo)
buf = io.BytesIO()
Image.fromarray(photo).save(buf, "PNG")
answer = TestClient(create_app(rec), base_url="http://127.0.0.1").post(
    "/v1/recognize", content=buf.getvalue(), headers={"content-type": "image/png"}
)
training = ("torch", "torchvision", "ultralytics", "timm", "transformers", "onnx")
inside = ("cardid.models", "cardid.train", "cardid.synth", "cardid.data")
loaded = [m for m in sys.modules if m.split(".")[0] in training or m.startswith(inside)]
print(json.dumps({"loaded": sorted(loaded), "cards": len(result.cards), "status": answer.status_code,
                  "found": len(answer.json()["cards"])}))
"""


def test_recognise_and_serve_with_onnx_artefacts_import_no_training_library(tmp_path, synth_catalog):
    from cardid.db.build import build_db
    from cardid.embed import load_embedder
    from cardid.export.onnx import export_onnx
    from cardid.models.artifact import load_model_dir

    model, meta = load_model_dir(make_tiny_model(tmp_path / "model"), "cpu")
    student = export_onnx(model, meta, tmp_path / "student.onnx")
    db = build_db(load_embedder(student), synth_catalog, tmp_path / "db").root
    # a finder that outlines one card-sized box in the middle of any photo
    finder = constant_obb_onnx(tmp_path / "finder.onnx", [((80, 80, 100, 140, 0.0), 0.9)])
    scan = synth_catalog.image_path(synth_catalog.ids[0])
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(student), str(db), str(finder), str(scan)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["loaded"] == []
    assert out["cards"] == 1 and out["status"] == 200 and out["found"] == 1
