"""Backbone registry: ``dinov3`` (HF transformers ``DINOv3ViTModel``), ``timm:<name>``, tiny configs.

A backbone maps a preprocessed batch (N, 3, H, W) to a pooled feature (N, ``out_dim``) and exposes
its transformer/conv ``blocks`` in order, so training can unfreeze the last N of them *before*
wrapping the model in DDP. ``spec`` is everything needed to rebuild the same architecture
offline (random init) before loading trained weights from a safetensors file.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import nn

from cardid.errors import CardIDError

log = logging.getLogger(__name__)

Pooling = Literal["cls", "cls+mean"]
DINOV3_DEFAULT_ID = "facebook/dinov3-vitl16-pretrain-lvd1689m"

#: DINOv3 ViT-L/16 (LVD-1689M) architecture, for random-init benchmarks at the real shape.
DINOV3_VITL16 = dict(
    hidden_size=1024,
    intermediate_size=4096,
    num_hidden_layers=24,
    num_attention_heads=16,
    num_register_tokens=4,
    layerscale_value=1e-5,
    patch_size=16,
    image_size=224,
)
#: A few-hundred-thousand-parameter DINOv3 for tests and the CPU demo.
DINOV3_TINY = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_register_tokens=2,
    patch_size=16,
    image_size=64,
)
DINOV3_SMALL = dict(
    hidden_size=192,
    intermediate_size=384,
    num_hidden_layers=4,
    num_attention_heads=3,
    num_register_tokens=2,
    patch_size=16,
    image_size=128,
)


@dataclass
class BackboneSpec:
    """How to rebuild a backbone: registry name, weights source and the architecture config."""

    name: str
    source: str | None = None
    revision: str | None = None
    config: dict[str, Any] = field(default_factory=dict)


class Backbone(nn.Module):
    out_dim: int
    spec: BackboneSpec

    @property
    def blocks(self) -> list[nn.Module]:
        """The backbone's blocks in forward order (the last N are unfrozen in phase 2)."""
        raise NotImplementedError

    @property
    def tail(self) -> list[nn.Module]:
        """Modules after the last block (final norms): they train whenever the last block does."""
        return []


class HFDinoV3(Backbone):
    """transformers ``DINOv3ViTModel``: tokens are [CLS, registers…, patches…] after the final norm."""

    def __init__(self, model: nn.Module, spec: BackboneSpec, pooling: Pooling = "cls"):
        super().__init__()
        self.model, self.spec, self.pooling = model, spec, pooling
        self.n_reg = int(getattr(model.config, "num_register_tokens", 0))
        self.out_dim = model.config.hidden_size * (2 if pooling == "cls+mean" else 1)

    @property
    def blocks(self) -> list[nn.Module]:
        # transformers 5.x: model.model.layer; 4.57: model.layer (the spec's encoder.layer never existed)
        inner = getattr(self.model, "model", None)
        layers = getattr(inner, "layer", None) if inner is not None else None
        if layers is None:
            layers = getattr(self.model, "layer", None)
        if layers is None:
            raise CardIDError(
                "cannot find the transformer blocks of this DINOv3ViTModel (transformers version?)"
            )
        return list(layers)

    @property
    def tail(self) -> list[nn.Module]:
        return [self.model.norm] if hasattr(self.model, "norm") else []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.model(pixel_values=x).last_hidden_state
        cls = tokens[:, 0]
        if self.pooling == "cls":
            return cls
        return torch.cat([cls, tokens[:, 1 + self.n_reg :].mean(1)], dim=1)


class TimmBackbone(Backbone):
    """Any timm model: ViTs pool CLS (+ patch mean), conv nets their global pool."""

    def __init__(self, model: nn.Module, spec: BackboneSpec, pooling: Pooling = "cls"):
        super().__init__()
        self.model, self.spec, self.pooling = model, spec, pooling
        self.n_prefix = int(getattr(model, "num_prefix_tokens", 0))
        self.is_vit = hasattr(model, "blocks") and self.n_prefix > 0
        if pooling == "cls+mean" and not self.is_vit:
            raise CardIDError(f"pooling 'cls+mean' needs a ViT; {spec.source} has no CLS token")
        self.out_dim = model.num_features * (2 if pooling == "cls+mean" else 1)

    @property
    def blocks(self) -> list[nn.Module]:
        if hasattr(self.model, "blocks"):
            return list(self.model.blocks)
        if hasattr(self.model, "stages"):
            return [b for s in self.model.stages for b in (s.blocks if hasattr(s, "blocks") else [s])]
        return list(self.model.children())

    @property
    def tail(self) -> list[nn.Module]:
        names = ("norm", "fc_norm", "head") if hasattr(self.model, "blocks") else ("norm_pre", "head")
        return [getattr(self.model, n) for n in names if isinstance(getattr(self.model, n, None), nn.Module)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.model.forward_features(x)
        if not self.is_vit:
            return self.model.forward_head(feats, pre_logits=True)
        cls = feats[:, 0]
        if self.pooling == "cls":
            return cls
        return torch.cat([cls, feats[:, self.n_prefix :].mean(1)], dim=1)


# ----------------------------------------------------------------------------- registry
@dataclass(frozen=True)
class _Entry:
    build: Callable[..., Backbone]
    #: the pixel normalisation (``mean``/``std``/``channel_order``/``input_scale`` of a
    #: :class:`~cardid.preprocess.Preprocess`) its pretrained weights expect; None: the contract's
    pixels: dict | None = None


_REGISTRY: dict[str, _Entry] = {}


def register(name: str, pixels: dict | None = None):
    """Register a backbone builder under ``name``, with the pixels its weights expect."""

    def deco(fn):
        _REGISTRY[name] = _Entry(fn, pixels)
        return fn

    return deco


def fit_preprocess(pre, backbone: Backbone | str):
    """The contract ``pre`` (its size and resize policy) with the pixel normalisation the
    backbone's pretrained weights expect; unchanged for backbones without one."""
    import dataclasses

    entry = _REGISTRY.get(backbone if isinstance(backbone, str) else backbone.spec.name)
    return dataclasses.replace(pre, **entry.pixels) if entry is not None and entry.pixels else pre


def list_backbones() -> list[str]:
    return [*sorted(_REGISTRY), "timm:<name>"]


def create_backbone(
    name: str,
    source: str | None = None,
    pretrained: bool = True,
    pooling: Pooling = "cls",
    revision: str | None = None,
    config: dict[str, Any] | None = None,
    kwargs: dict[str, Any] | None = None,
) -> Backbone:
    """Build a backbone by registry name. ``config`` (an architecture dict from a saved model) rebuilds
    the exact architecture with random weights, which a checkpoint then fills."""
    if name.startswith("timm:"):
        if config is None:
            config = {"kwargs": dict(kwargs or {})}
            return _timm(name[5:], pretrained=pretrained, pooling=pooling, config=config, weights=source)
        return _timm(name[5:], pretrained=False, pooling=pooling, config=config)
    if name not in _REGISTRY:
        raise CardIDError(f"unknown backbone {name!r} (known: {', '.join(list_backbones())})")
    extra = dict(kwargs or {})
    try:
        return _REGISTRY[name].build(
            source=source, pretrained=pretrained, pooling=pooling, revision=revision, config=config, **extra
        )
    except TypeError as e:
        if extra and "unexpected keyword" in str(e):
            raise CardIDError(f"backbone {name!r} does not take {sorted(extra)}") from e
        raise


def _dinov3_from_config(
    name: str, cfg: dict[str, Any], pooling: Pooling, source=None, revision=None
) -> HFDinoV3:
    from transformers import DINOv3ViTConfig, DINOv3ViTModel

    conf = DINOv3ViTConfig(
        **{k: v for k, v in cfg.items() if k not in ("model_type", "transformers_version")}
    )
    model = DINOv3ViTModel(conf)
    return HFDinoV3(model, BackboneSpec(name, source, revision, _arch_dict(conf)), pooling)


def _arch_dict(conf) -> dict[str, Any]:
    d = conf.to_dict()
    for k in (
        "transformers_version",
        "architectures",
        "_name_or_path",
        "torch_dtype",
        "dtype",
        "id2label",
        "label2id",
        "output_hidden_states",
        "return_dict",
        "problem_type",
        "is_encoder_decoder",
        "chunk_size_feed_forward",
    ):
        d.pop(k, None)
    return d


@register("dinov3")
def dinov3(
    source: str | None = None,
    pretrained: bool = True,
    pooling: Pooling = "cls",
    revision: str | None = None,
    config: dict[str, Any] | None = None,
) -> Backbone:
    """DINOv3 ViT through transformers; ``source`` is a hub id (default ViT-L/16) or a local directory.

    Gated hub weights need a token: ``HF_TOKEN`` (or ``HUGGING_FACE_HUB_TOKEN``) from the environment.
    """
    source = source or DINOV3_DEFAULT_ID
    if config is not None or not pretrained:
        if config is None:
            raise CardIDError(
                "dinov3 without pretrained weights needs an architecture config (use dinov3-tiny, "
                "dinov3-small or dinov3-vitl16-random)"
            )
        return _dinov3_from_config("dinov3", config, pooling, source, revision)
    from transformers import DINOv3ViTModel

    token = os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN")
    try:
        model = DINOv3ViTModel.from_pretrained(source, revision=revision, token=token)
    except OSError as e:
        local = os.path.isdir(source)
        hint = (
            "is it a directory written by save_pretrained?"
            if local
            else "the hub is unreachable offline: download the weights elsewhere and pass a local directory "
            "(--set model.source=DIR), or set HF_TOKEN for the gated repo"
        )
        raise CardIDError(
            f"cannot load DINOv3 weights from {source!r}: {hint} ({str(e).splitlines()[0]})"
        ) from e
    log.info("loaded DINOv3 weights from %s (revision %s)", source, revision or "default")
    spec = BackboneSpec(
        "dinov3", source, revision or getattr(model.config, "_commit_hash", None), _arch_dict(model.config)
    )
    return HFDinoV3(model, spec, pooling)


def _random_dinov3(name: str, arch: dict[str, Any]):
    def build(source=None, pretrained=True, pooling: Pooling = "cls", revision=None, config=None) -> Backbone:
        if pretrained and config is None:
            log.info("%s has no pretrained weights: random initialisation", name)
        return _dinov3_from_config(name, config or arch, pooling)

    register(name)(build)


_random_dinov3("dinov3-tiny", DINOV3_TINY)
_random_dinov3("dinov3-small", DINOV3_SMALL)
_random_dinov3("dinov3-vitl16-random", DINOV3_VITL16)


def _timm(
    model_name: str,
    pretrained: bool,
    pooling: Pooling,
    config: dict[str, Any] | None,
    weights: str | None = None,
) -> Backbone:
    """timm model without classifier. Pretrained weights come from the hub when reachable or from a
    local file (``weights``, through ``pretrained_cfg_overlay``); otherwise random init, said in the log."""
    import timm

    kwargs = dict((config or {}).get("kwargs", {}))
    if weights:
        kwargs["pretrained_cfg_overlay"] = {"file": str(weights)}
    try:
        model = timm.create_model(model_name, pretrained=pretrained, num_classes=0, **kwargs)
        if pretrained:
            log.info(
                "timm %s: pretrained weights loaded%s", model_name, f" from {weights}" if weights else ""
            )
    except RuntimeError as e:
        if "Unknown model" in str(e):
            raise CardIDError(f"unknown timm model {model_name!r}") from e
        raise
    except Exception as e:  # hub unreachable offline, or a bad local file
        if not pretrained:
            raise
        if weights:
            raise CardIDError(f"cannot load timm weights for {model_name} from {weights}: {e}") from e
        log.warning(
            "timm %s: pretrained weights unreachable (%s): RANDOM INITIALISATION",
            model_name,
            str(e).splitlines()[0][:120],
        )
        kwargs.pop("pretrained_cfg_overlay", None)
        model = timm.create_model(model_name, pretrained=False, num_classes=0, **kwargs)
    kwargs.pop("pretrained_cfg_overlay", None)
    spec = BackboneSpec(f"timm:{model_name}", weights or model_name, None, {"kwargs": kwargs})
    return TimmBackbone(model, spec, pooling)
