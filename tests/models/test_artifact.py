import json

import pytest
import torch

from cardid.errors import CardIDError
from cardid.models.artifact import load_model_dir, model_identity, save_model_dir
from cardid.models.backbones import create_backbone
from cardid.models.model import EmbeddingModel
from cardid.preprocess import get_preset


def tiny(embed_dim=32):
    torch.manual_seed(0)
    return EmbeddingModel(create_backbone("dinov3-tiny"), embed_dim).eval()


def test_round_trip_gives_identical_embeddings_and_a_self_describing_record(tmp_path):
    m = tiny()
    meta = save_model_dir(
        m,
        tmp_path / "m",
        name="teacher",
        kind="teacher",
        preprocess=get_preset("tiny64"),
        pooling="cls",
        classes=["a-1", "a-2"],
        metrics={"recall@1": 0.5},
    )
    loaded, meta2 = load_model_dir(tmp_path / "m")
    x = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), m(x))
        assert torch.allclose(loaded(x).norm(dim=1), torch.ones(3))
    assert meta2 == meta and model_identity(meta) == meta["tensors_sha256"][:16]
    for key in ("backbone", "preprocess", "embed_dim", "classes", "versions", "kind"):
        assert key in meta
    assert meta["preprocess"] == get_preset("tiny64").to_dict()


def test_tampered_or_mismatched_files_are_refused(tmp_path):
    save_model_dir(
        tiny(), tmp_path / "m", name="teacher", kind="teacher", preprocess=get_preset("tiny64"), pooling="cls"
    )
    save_model_dir(
        tiny(48),
        tmp_path / "other",
        name="teacher",
        kind="teacher",
        preprocess=get_preset("tiny64"),
        pooling="cls",
    )
    # weights of another model under this description
    (tmp_path / "m" / "teacher.safetensors").write_bytes(
        (tmp_path / "other" / "teacher.safetensors").read_bytes()
    )
    with pytest.raises(CardIDError, match="SHA-256"):
        load_model_dir(tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    meta["weights_sha256"] = json.loads((tmp_path / "other" / "model.json").read_text())["weights_sha256"]
    (tmp_path / "m" / "model.json").write_text(json.dumps(meta))
    with pytest.raises(CardIDError, match="does not fit this architecture.*shape"):
        load_model_dir(tmp_path / "m")
    with pytest.raises(CardIDError, match="not found"):
        load_model_dir(tmp_path / "nothing")
