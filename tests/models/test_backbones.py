import pytest
import torch

from cardid.errors import CardIDError
from cardid.models.backbones import DINOV3_TINY, HFDinoV3, create_backbone


def test_tiny_dinov3_saved_with_save_pretrained_loads_through_the_real_loader(tmp_path):
    from transformers import DINOv3ViTConfig, DINOv3ViTModel

    torch.manual_seed(0)
    ref = DINOv3ViTModel(DINOv3ViTConfig(**DINOV3_TINY)).eval()
    ref.save_pretrained(tmp_path / "tiny")
    bb = create_backbone("dinov3", source=str(tmp_path / "tiny"), pretrained=True).eval()
    assert isinstance(bb, HFDinoV3) and bb.spec.source == str(tmp_path / "tiny")
    x = torch.randn(2, 3, 64, 48)
    with torch.no_grad():
        torch.testing.assert_close(bb(x), ref(pixel_values=x).last_hidden_state[:, 0])
    assert len(bb.blocks) == DINOV3_TINY["num_hidden_layers"]
    assert bb.blocks[-1] is bb.model.model.layer[-1]
    # the recorded architecture rebuilds the same shapes offline
    again = create_backbone("dinov3", config=bb.spec.config, pretrained=False)
    assert {k: v.shape for k, v in again.state_dict().items()} == {
        k: v.shape for k, v in bb.state_dict().items()
    }


def test_cls_plus_mean_pooling_doubles_the_width():
    bb = create_backbone("dinov3-tiny", pooling="cls+mean")
    assert bb.out_dim == 2 * DINOV3_TINY["hidden_size"]
    assert bb(torch.randn(1, 3, 64, 64)).shape == (1, bb.out_dim)


def test_unreachable_hub_id_is_a_clear_error(monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # read at import time, hence also:
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(CardIDError, match="cannot load DINOv3 weights.*offline"):
        create_backbone("dinov3", source="facebook/dinov3-vitl16-pretrain-lvd1689m")


def test_timm_backbone_and_unknown_names():
    bb = create_backbone("timm:convnext_atto", pretrained=False)
    assert bb(torch.randn(2, 3, 64, 64)).shape == (2, bb.out_dim) and len(bb.blocks) > 4
    with pytest.raises(CardIDError, match="needs a ViT"):
        create_backbone("timm:convnext_atto", pretrained=False, pooling="cls+mean")
    with pytest.raises(CardIDError, match="unknown backbone"):
        create_backbone("resnet-9000")
    with pytest.raises(CardIDError, match="unknown timm model"):
        create_backbone("timm:not_a_model", pretrained=False)
