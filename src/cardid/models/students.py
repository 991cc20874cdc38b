"""Student presets, named after their deployment target as in the spec.

| preset | timm model | input | target |
|---|---|---|---|
| ``hailo`` | ``convnext_tiny`` | 224 | Raspberry Pi + Hailo-8L |
| ``ios`` | ``convnext_base`` | 384 | iPhone, CoreML |
| ``android`` | ``vit_small_patch16_224`` | 224 | Android, ONNX |
| ``tiny-cnn`` / ``tiny-vit`` | timm test models | 64 | tests and the CPU demo |
| ``small-cnn`` | ``convnext_atto`` | 176×128 | real-data runs on a CPU |
| ``hailo-lite0`` | ``efficientnet-lite0`` (packaged ImageNet weights, GeM + 3×4 grid) | 224×160 | Hailo-8L (in Hailo's model zoo) |

Each student is backbone → projection (backbone dim → D, GELU, D → D) → L2 norm, with D the
teacher's embedding size, and carries its own preprocessing contract built from the timm model's
pretrained config (mean/std differ: ImageNet for ConvNeXt, 0.5/0.5 for the augreg ViT).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cardid.errors import CardIDError
from cardid.models.backbones import create_backbone, fit_preprocess
from cardid.models.model import EmbeddingModel
from cardid.preprocess import Preprocess


@dataclass(frozen=True)
class StudentPreset:
    timm_name: str  # a timm model name, or a registry backbone when ``registry`` is set
    size: int  # input width (and height unless ``height`` is given)
    kwargs: dict[str, Any] = field(default_factory=dict)
    height: int | None = None
    registry: bool = False  # ``timm_name`` names a registry backbone (packaged weights)
    pooling: str = "cls"
    proj_norm: str | None = None


STUDENT_PRESETS: dict[str, StudentPreset] = {
    "hailo": StudentPreset("convnext_tiny", 224),
    "ios": StudentPreset("convnext_base", 384),
    "android": StudentPreset("vit_small_patch16_224", 224),
    "tiny-cnn": StudentPreset("test_convnext", 64),
    "tiny-vit": StudentPreset("test_vit", 64, {"img_size": 64}),
    "small-cnn": StudentPreset("convnext_atto", 128, height=176),  # CPU real-data runs, card-shaped input
    # EfficientNet-Lite0 runs on the Hailo-8L (Hailo's model zoo: 215 FPS); ConvNeXt is not in it
    "hailo-lite0": StudentPreset(
        "efficientnet-lite0", 160, height=224, registry=True, pooling="gem+grid3x4", proj_norm="batchnorm"
    ),
}


def create_student(
    preset: str, embed_dim: int, pretrained: bool = True, weights: str | None = None
) -> tuple[EmbeddingModel, Preprocess]:
    """Build a student and its preprocessing contract. ``weights``: a local timm weights file."""
    if preset not in STUDENT_PRESETS:
        raise CardIDError(f"unknown student preset {preset!r} (known: {', '.join(STUDENT_PRESETS)})")
    p = STUDENT_PRESETS[preset]
    if p.registry:
        backbone = create_backbone(
            p.timm_name, source=weights, pretrained=pretrained, pooling=p.pooling, kwargs=p.kwargs or None
        )
        pre = fit_preprocess(Preprocess(p.height or p.size, p.size, "pad"), backbone)
    else:
        backbone = create_backbone(
            f"timm:{p.timm_name}", source=weights, pretrained=pretrained, kwargs=p.kwargs
        )
        cfg = getattr(backbone.model, "pretrained_cfg", {}) or {}
        pre = Preprocess(
            p.height or p.size,
            p.size,
            "pad",
            mean=tuple(cfg.get("mean", (0.485, 0.456, 0.406))),
            std=tuple(cfg.get("std", (0.229, 0.224, 0.225))),
        )
    model = EmbeddingModel(backbone, embed_dim, dropout=0.0, hidden_dim=embed_dim, proj_norm=p.proj_norm)
    return model, pre
