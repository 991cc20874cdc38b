"""Bundles: one folder with the model, DB, finder and settings, every file hashed and checked."""

import json
import shutil
import subprocess
import sys

import pytest
from tests.conftest import constant_obb_onnx, make_tiny_model

from cardid.bundle import BundleError, load_bundle, write_bundle
from cardid.cli import main


@pytest.fixture(scope="module")
def parts(tmp_path_factory, synth_catalog):
    from cardid.db.build import build_db
    from cardid.embed import load_embedder
    from cardid.export.onnx import export_onnx
    from cardid.models.artifact import load_model_dir

    root = tmp_path_factory.mktemp("bundle")
    source = make_tiny_model(root / "model")
    model, meta = load_model_dir(source, "cpu")
    student = export_onnx(model, meta, root / "student.onnx")
    db = build_db(load_embedder(student), synth_catalog, root / "db").root
    finder = constant_obb_onnx(root / "finder.onnx", [((80, 80, 100, 140, 0.0), 0.9)])
    return {"model": student, "db": db, "finder": finder, "source": source, "root": root}


def make(parts, out, **kw):
    return write_bundle(
        out,
        parts["model"],
        parts["db"],
        kw.pop("detector", parts["finder"]),
        match={"printing": "rules"},
        evaluation={"mean": {"card_named": 0.9}},
        source=parts["source"],
        recipe={"name": "test"},
        **kw,
    )


def test_a_bundle_carries_everything_and_recognises_as_it_says(tmp_path, parts, synth_catalog):
    b = make(parts, tmp_path / "b")
    assert b.model.name == "model.onnx" and b.detector.endswith("detector.onnx") and b.source is not None
    assert b.match_config().printing == "rules" and b.match_config(printing="model").printing == "model"
    names = set(b.meta["files"])
    assert {"model.onnx", "detector.onnx", "db/db.json", "db/embeddings.npy", "evaluation.json"} <= names
    assert "source/model.json" in names and json.loads((b.root / "evaluation.json").read_text())["mean"]
    scan = synth_catalog.image_path(synth_catalog.ids[0])
    from cardid.images import load_rgb

    result = b.recognizer().recognize_photo(load_rgb(scan))
    assert len(result.cards) == 1  # the bundle's own finder outlined the one card
    crop = b.recognizer(detector=False).recognize_photo(load_rgb(scan))
    d = crop.cards[0].decision
    # the bundled DB was never calibrated: it names nothing, yet ranks the scan itself first
    assert d.kind == "unknown" and d.card_id is None and d.candidates[0].card_id == synth_catalog.ids[0]


def test_a_bundle_with_a_missing_altered_or_added_file_refuses_to_load(tmp_path, parts):
    b = make(parts, tmp_path / "b")
    shutil.copytree(b.root, tmp_path / "altered")
    meta = json.loads((tmp_path / "altered" / "db" / "db.json").read_text())
    meta["calibration"] = {"embedding": {"threshold": -1.0}}  # "accept everything"
    (tmp_path / "altered" / "db" / "db.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match="db/db.json was altered"):
        load_bundle(tmp_path / "altered")
    shutil.copytree(b.root, tmp_path / "missing")
    (tmp_path / "missing" / "detector.onnx").unlink()
    with pytest.raises(BundleError, match="detector.onnx is missing"):
        load_bundle(tmp_path / "missing")
    shutil.copytree(b.root, tmp_path / "added")
    (tmp_path / "added" / "db" / "extra.npy").write_bytes(b"x")
    with pytest.raises(BundleError, match="db/extra.npy is not part of the bundle"):
        load_bundle(tmp_path / "added")
    with pytest.raises(BundleError, match="not a cardid bundle"):
        load_bundle(tmp_path)
    with pytest.raises(BundleError, match="carries an ONNX model"):
        write_bundle(tmp_path / "x", parts["source"], parts["db"])
    with pytest.raises(BundleError, match="an ONNX detector or 'classical'"):
        make(parts, tmp_path / "y", detector=parts["model"].with_suffix(".pt"))


def test_cli_takes_a_bundle_and_refuses_a_tampered_one(tmp_path, parts, synth_catalog, capsys):
    b = make(parts, tmp_path / "b")
    scan = synth_catalog.image_path(synth_catalog.ids[0])
    out = tmp_path / "out.jsonl"
    assert main(["recognize", str(scan), "--bundle", str(b.root), "--json", str(out)]) == 0
    rec = json.loads(out.read_text().splitlines()[0])
    assert len(rec["cards"]) == 1  # found by the bundle's finder, not taken as one crop
    capsys.readouterr()
    assert main(["recognize", str(scan), "--bundle", str(b.root), "--model", str(parts["model"])]) == 1
    assert "names its own model and DB" in capsys.readouterr().err
    assert main(["export", "--bundle", str(b.root), "--out", str(tmp_path / "exp"), "--no-int8"]) == 0
    assert list((tmp_path / "exp").rglob("model.onnx"))
    (b.root / "model.onnx").write_bytes(b"not the model")
    capsys.readouterr()
    assert main(["serve", str(b.root)]) == 1
    assert "model.onnx was altered" in capsys.readouterr().err


def test_a_bundle_loads_and_recognises_without_any_training_library(tmp_path, parts, synth_catalog):
    b = make(parts, tmp_path / "b")
    code = (
        "import json, sys\n"
        "from cardid.bundle import load_bundle\n"
        "from cardid.images import load_rgb\n"
        "r = load_bundle(sys.argv[1]).recognizer().recognize_photo(load_rgb(sys.argv[2]))\n"
        "bad = ('torch', 'ultralytics', 'timm', 'transformers', 'onnx')\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in bad)), len(r.cards))\n"
    )
    scan = synth_catalog.image_path(synth_catalog.ids[0])
    proc = subprocess.run(
        [sys.executable, "-c", code, str(b.root), str(scan)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["[]", "1"]


def _edit_meta(root, **changes):
    meta = json.loads((root / "bundle.json").read_text())
    for k, v in changes.items():
        if v is None:
            meta.pop(k, None)
        else:
            meta[k] = v
    (root / "bundle.json").write_text(json.dumps(meta))


def test_a_bundle_names_only_files_inside_itself(tmp_path, parts):
    """``bundle.json`` naming a file elsewhere (absolute, ``..``), a linked folder, a hidden
    extra file or values of the wrong kind: refused with its key, nothing outside read."""
    import os

    b = make(parts, tmp_path / "b")
    outside = tmp_path / "outside.onnx"
    shutil.copy2(b.model, outside)
    cases = {
        "abs": ({"model": str(outside)}, "points outside"),
        "up": ({"model": "../outside.onnx"}, "points outside"),
        "hash-oracle": (
            {"files": {**b.meta["files"], "../../../../etc/hostname": "0" * 64}},
            "points outside",
        ),
        "no-model": ({"model": None}, "'model' must name a file"),
        "conf": ({"detector_conf": "high"}, "detector_conf must be a number"),
        "match-key": ({"match": {"printing": "rules", "nope": 1}}, "unknown decision setting"),
        "match-type": ({"match": ["x"]}, "match must be a mapping"),
    }
    for name, (change, why) in cases.items():
        shutil.copytree(b.root, tmp_path / name)
        _edit_meta(tmp_path / name, **change)
        with pytest.raises(BundleError, match=why):
            load_bundle(tmp_path / name)
    shutil.copytree(b.root, tmp_path / "linked")
    shutil.move(tmp_path / "linked" / "db", tmp_path / "real-db")
    os.symlink(tmp_path / "real-db", tmp_path / "linked" / "db")
    with pytest.raises(BundleError, match="link"):
        load_bundle(tmp_path / "linked")
    shutil.copytree(b.root, tmp_path / "hidden")
    (tmp_path / "hidden" / "db" / ".extra").write_text("x")
    with pytest.raises(BundleError, match=r"db/\.extra is not part of the bundle"):
        load_bundle(tmp_path / "hidden")


def test_a_served_bundle_is_the_one_verified_and_carries_its_scans(tmp_path, parts, monkeypatch):
    """A copy on another machine (its catalog gone) still shows every printing's scan; its DB
    edited after load is never served; a collection inside it is refused."""
    pytest.importorskip("fastapi")
    import uvicorn
    from fastapi.testclient import TestClient
    from tests.conftest import LOCAL

    from cardid.errors import CardIDError
    from cardid.serve import serve

    b = make(parts, tmp_path / "b")
    assert len(b.meta["gallery"]) == len(b.recognizer().matcher.db)  # every card's scan is carried
    moved = tmp_path / "elsewhere" / "b"
    shutil.copytree(b.root, moved)
    apps = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: apps.append(app))
    serve(None, None, bundle=moved, collection=tmp_path / "c.sqlite")
    c = TestClient(apps[0], base_url=LOCAL)
    cid = b.recognizer().matcher.db.ids[0]
    r = c.get(f"/v1/cards/{cid}/image")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    meta = json.loads((moved / "db" / "db.json").read_text())
    meta["calibration"] = {"embedding": {"threshold": -1.0}}
    (moved / "db" / "db.json").write_text(json.dumps(meta))
    apps[0].state.served.checked = -1e9  # as if the reload interval had passed
    assert c.get("/healthz").json()["db_reloads"] == 0
    with pytest.raises(CardIDError, match="inside the bundle"):
        serve(None, None, bundle=b.root, collection=b.root / "db" / "c.sqlite")
