import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from tests.conftest import make_tiny_model

from cardid.cli import main
from cardid.db.store import CardDB, DBError
from cardid.embed import load_embedder
from cardid.embed.onnx import OnnxEmbedder, read_onnx_meta
from cardid.errors import CardIDError
from cardid.export import export_model
from cardid.export.hailo import HAILO_SUPPORTED, precheck_ops
from cardid.export.parity import ParitySet, parity
from cardid.io import sha256_file
from cardid.models.artifact import save_model_dir
from cardid.models.students import create_student
from cardid.synth.cards import synth_cards


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    return synth_cards(tmp_path_factory.mktemp("ex") / "cat", n=10, seed=6, height=256, reprint_fraction=0.0)


@pytest.fixture(scope="module")
def exported(tmp_path_factory, catalog):
    root = tmp_path_factory.mktemp("export")
    model = make_tiny_model(root / "model")
    # a random tiny model's embeddings nearly tie, so int8 may flip neighbours: only fp32 is strict here
    loose = {"int8": {"max_recall_drop": 0.5}}
    report = export_model(
        model,
        root / "models",
        ("onnx", "hailo"),
        catalog=catalog,
        calib_size=16,
        log=lambda s: None,
        tolerances=loose,
    )
    return root, model, report


def test_onnx_parity_and_self_description(exported):
    root, model, _ = exported
    dest = root / "models" / "teacher"  # the spec's layout: teacher/ or students/<name>/
    par = json.loads((dest / "parity.json").read_text())
    assert (
        par["fp32"]["max_abs_diff"] < 1e-4 and par["fp32"]["top1_agreement"] == 1.0 and par["fp32"]["passed"]
    )
    assert par["fp16"]["mean_cosine"] > 0.999
    assert "recall@1_drop" in par["int8"] and par["int8"]["passed"]
    meta = read_onnx_meta(dest / "model.onnx")
    src = json.loads((model / "model.json").read_text())
    assert meta["preprocess"] == src["preprocess"] and meta["embed_dim"] == 32
    assert meta["source_identity"] == src["tensors_sha256"][:16]
    assert read_onnx_meta(dest / "model.int8.onnx")["precision"] == "int8"
    emb = OnnxEmbedder(dest / "model.onnx")
    assert emb.identity == sha256_file(dest / "model.onnx")[:16] != meta["source_identity"]
    sess = ort.InferenceSession(str(dest / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["input"] and [o.name for o in sess.get_outputs()] == [
        "embedding"
    ]
    x = np.random.default_rng(0).normal(size=(3, 3, 64, 64)).astype(np.float32)  # dynamic batch
    y = sess.run(None, {"input": x})[0]
    assert y.shape == (3, 32)
    np.testing.assert_allclose(np.linalg.norm(y, axis=1), 1, atol=1e-5)


def test_parity_catches_a_different_model(exported, tmp_path):
    _, model, _ = exported
    other = load_embedder(make_tiny_model(tmp_path / "other", seed=3), "cpu")
    res = parity(load_embedder(model, "cpu"), other, ParitySet.synthetic(cards=6), "fp32")
    assert not res["passed"] and any("max abs diff" in f for f in res["failures"])


def test_failed_parity_fails_the_command(exported, tmp_path, monkeypatch, capsys):
    from cardid.export import parity as parity_mod

    _, model, _ = exported
    monkeypatch.setitem(parity_mod.TOLERANCES, "fp32", {**parity_mod.TOLERANCES["fp32"], "max_abs": 0.0})
    args = ["export", "--model", str(model), "--out", str(tmp_path / "m"), "--no-int8", "--no-fp16"]
    assert main(args) == 1
    assert "failed its parity check" in capsys.readouterr().err
    assert (tmp_path / "m" / "teacher" / "parity.json").is_file()  # kept, saying why


def test_hailo_bundle(exported):
    root, model, _ = exported
    h = root / "models" / "teacher" / "hailo"
    info = json.loads((h / "hailo.json").read_text())
    assert info["target"] == "hailo8l" and info["opset"] == 17
    sess = ort.InferenceSession(str(h / "model.onnx"), providers=["CPUExecutionProvider"])
    assert sess.get_inputs()[0].shape == [1, 3, 64, 64]  # static batch 1
    assert onnx.load(str(h / "model.onnx")).opset_import[0].version == 17
    calib = np.load(h / "calib.npy")
    assert calib.dtype == np.uint8 and calib.shape == (16, 64, 64, 3) and calib.std() > 10
    pp = json.loads((model / "model.json").read_text())["preprocess"]
    alls = (h / "model.alls").read_text()
    assert f"{pp['mean'][0] * 255:.4f}" in alls and f"{pp['std'][2] * 255:.4f}" in alls
    assert "hailo8l" in (h / "README.md").read_text()
    assert info["precheck"]["ok"], info["precheck"]["unsupported"]


def test_compile_without_the_dfc_names_the_next_step(exported):
    from cardid.export.hailo import compile_bundle

    root, _, _ = exported
    with pytest.raises(CardIDError, match=r"hailo_sdk_client\) is not installed.*README.md"):
        compile_bundle(root / "models" / "teacher" / "hailo")


def test_precheck_flags_an_unsupported_op(tmp_path):
    class TopK(torch.nn.Module):
        def forward(self, x):
            return torch.topk(x.flatten(1), 5).values

    path = tmp_path / "topk.onnx"
    torch.onnx.export(TopK(), (torch.rand(1, 3, 8, 8),), str(path), dynamo=False, opset_version=17)
    check = precheck_ops(path)
    assert not check["ok"] and "TopK" in check["unsupported"] and "TopK" not in HAILO_SUPPORTED


def test_unknown_hailo_target_and_export_target(exported, tmp_path):
    _, model, _ = exported
    with pytest.raises(CardIDError, match="unknown Hailo target"):
        export_model(model, tmp_path, ("hailo",), hailo_target="hailo10", calib_size=4, log=lambda s: None)
    with pytest.raises(CardIDError, match="unknown export target"):
        export_model(model, tmp_path, ("tflite",), log=lambda s: None)


def test_db_built_with_onnx_refuses_the_pytorch_model(exported, catalog, tmp_path):
    root, model, _ = exported
    onnx_path = root / "models" / "teacher" / "model.onnx"
    assert (
        main(
            [
                "index",
                "build",
                "--model",
                str(onnx_path),
                "--catalog",
                str(catalog.root),
                "--out",
                str(tmp_path / "db"),
                "--workers",
                "0",
            ]
        )
        == 0
    )
    db = CardDB.load(tmp_path / "db", load_embedder(onnx_path))
    assert db.meta["model"]["format"] == "onnx" and db.meta["model"]["source_identity"]
    with pytest.raises(DBError, match="was built by model"):
        CardDB.load(tmp_path / "db", load_embedder(model, "cpu"))
    hits = db.search(load_embedder(onnx_path).embed([catalog.load_image(catalog.ids[2])]), 1)
    assert hits[0][0].card_id == catalog.ids[2]
    out = tmp_path / "r.jsonl"
    scan = catalog.image_path(catalog.ids[2])
    assert (
        main(
            [
                "recognize",
                str(scan),
                "--model",
                str(onnx_path),
                "--db",
                str(tmp_path / "db"),
                "--json",
                str(out),
            ]
        )
        == 0
    )
    assert json.loads(out.read_text())["cards"][0]["top"][0]["card_id"] == catalog.ids[2]


def test_student_layout_and_coreml(tmp_path, catalog):
    ct = pytest.importorskip("coremltools")
    from cardid.export.coreml import coreml_interface

    torch.manual_seed(0)
    m, pp = create_student("tiny-cnn", 32, pretrained=False)
    save_model_dir(m.eval(), tmp_path / "s", name="tiny-cnn", kind="student", preprocess=pp, pooling="avg")
    report = export_model(
        tmp_path / "s", tmp_path / "models", ("coreml",), catalog=catalog, log=lambda s: None
    )
    pkg = tmp_path / "models" / "students" / "tiny-cnn" / "model.mlpackage"
    assert pkg.is_dir() and report["coreml"]["path"] == str(pkg)
    spec = coreml_interface(pkg)
    assert spec["input"] == {"name": "image", "type": "imageType", "width": pp.width, "height": pp.height}
    assert spec["output"]["name"] == "embedding"
    meta = ct.models.MLModel(str(pkg), skip_model_load=True).user_defined_metadata
    assert json.loads(meta["cardid.preprocess"]) == pp.to_dict()
    assert "checked" in report["coreml"]["parity"]


def test_dinov3_teacher_converts_to_coreml(exported, tmp_path):
    pytest.importorskip("coremltools")
    from cardid.export.coreml import export_coreml
    from cardid.models.artifact import load_model_dir

    _, model_dir, _ = exported
    model, meta = load_model_dir(model_dir)
    info = export_coreml(model, meta, tmp_path / "teacher.mlpackage")  # torch.export path (RoPE, registers)
    assert info["input"]["type"] == "imageType" and info["output"]["name"] == "embedding"


def test_fp16_export_of_gem_pooling_does_not_overflow(tmp_path):
    """GeM raises features to the power 3: on raw conv features of ~50, x³ is past fp16's 65,504.
    The pooling is written so the fp16 graph never forms such a value."""
    import numpy as np
    import onnxruntime as ort
    import torch

    from cardid.export.onnx import to_fp16
    from cardid.models.pooling import FeaturePool

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
            self.pool = FeaturePool("gem+grid3x4", 8)

        def forward(self, x):
            return self.pool(torch.relu(self.conv(x)) * 60.0)

    torch.manual_seed(0)
    net = Net().eval()
    x = torch.rand(2, 3, 32, 24)
    torch.onnx.export(net, (x,), str(tmp_path / "m.onnx"), input_names=["x"], dynamo=False)
    to_fp16(tmp_path / "m.onnx", tmp_path / "m16.onnx")
    y = ort.InferenceSession(str(tmp_path / "m16.onnx")).run(None, {"x": x.numpy()})[0]
    ref = net(x).detach().numpy()
    assert np.isfinite(y).all()
    assert np.abs(y - ref).max() < 5e-3
