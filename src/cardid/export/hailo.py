"""Hailo-8L / Hailo-8 compiler bundle (the Dataflow Compiler is not on PyPI).

The bundle holds what the DFC needs and nothing that can drift:
- ``model.onnx``: static batch 1, opset 17 (legacy exporter), **without** normalisation — the
  model script adds it on chip, so the device is fed raw uint8 RGB;
- ``calib.npy``: camera-like simulated crops, uint8 NHWC RGB, resized by the model's own contract
  (the origin project calibrated with the wrong normalisation and channel order);
- ``model.alls``: the model script (normalisation from the contract, optimisation level);
- ``hailo.json``: target (``hailo8l`` unless told otherwise — never implicit), shapes, contract,
  and the operator pre-check; ``README.md`` with the exact compile step.
``compile_bundle`` runs translate → optimise → compile → ``.hef`` when ``hailo_sdk_client`` is
installed, and otherwise says precisely what to run where it is.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from cardid.errors import CardIDError
from cardid.io import write_bytes_atomic, write_json_atomic
from cardid.models.artifact import model_identity
from cardid.preprocess import Preprocess

TARGETS = ("hailo8l", "hailo8")

#: ONNX operators the Hailo DFC parser maps to hardware layers, compiled from Hailo's published
#: operator support (not checked here against a DFC install, which is not on PyPI: the DFC's own
#: translation is authoritative). Graph plumbing that the parser folds is listed too.
HAILO_SUPPORTED = frozenset(
    [
        "Conv",
        "ConvTranspose",
        "Gemm",
        "MatMul",
        "Add",
        "Sub",
        "Mul",
        "Div",
        "Relu",
        "LeakyRelu",
        "PRelu",
        "Sigmoid",
        "Tanh",
        "Elu",
        "Selu",
        "HardSigmoid",
        "HardSwish",
        "Softplus",
        "Exp",
        "Sqrt",
        "Pow",
        "Abs",
        "Neg",
        "Erf",
        "Gelu",
        "Mish",
        "Softmax",
        "Clip",
        "Min",
        "Max",
        "MaxPool",
        "AveragePool",
        "GlobalAveragePool",
        "GlobalMaxPool",
        "BatchNormalization",
        "InstanceNormalization",
        "LayerNormalization",
        "ReduceMean",
        "ReduceMax",
        "ReduceSum",
        "ReduceL2",
        "Concat",
        "Split",
        "Slice",
        "Reshape",
        "Transpose",
        "Flatten",
        "Squeeze",
        "Unsqueeze",
        "Resize",
        "Pad",
        "DepthToSpace",
        "SpaceToDepth",
        "Identity",
        "Constant",
        "Dropout",
        "Expand",
        "Tile",
        "Shape",
        "Gather",
        "Cast",
        "Equal",
        "Where",
    ]
)
#: Supported only in restricted forms (checked by the DFC at translation time).
HAILO_LIMITED = {
    "MatMul": "activation × activation (attention) needs DFC ≥ 3.27 and costs context switches",
    "Softmax": "supported on the last axis only",
    "Gather": "only on constant indices (embedding lookups fold)",
    "Shape": "must fold to constants (static shapes)",
    "Cast": "must fold to constants",
    "Equal": "must fold to constants",
    "Where": "must fold to constants",
}


def precheck_ops(onnx_path: str | Path) -> dict:
    """Every operator in the graph, classified: supported / limited / unsupported."""
    import onnx

    model = onnx.load(str(onnx_path))
    ops = Counter(n.op_type for n in model.graph.node)
    unsupported = {op: n for op, n in ops.items() if op not in HAILO_SUPPORTED}
    limited = {op: HAILO_LIMITED[op] for op in ops if op in HAILO_LIMITED}
    return {
        "ops": dict(sorted(ops.items())),
        "unsupported": dict(sorted(unsupported.items())),
        "limited": limited,
        "ok": not unsupported,
    }


def calibration_crops(images: list[np.ndarray], pp: Preprocess) -> np.ndarray:
    """uint8 N×H×W×3 RGB, resized (and padded/cropped) exactly as the contract says."""
    return np.stack([pp.resize_image(im) for im in images]).astype(np.uint8)


def model_script(pp: Preprocess, name: str = "normalization1") -> str:
    mean = ", ".join(f"{m * pp.input_scale:.4f}" for m in pp.mean)
    std = ", ".join(f"{s * pp.input_scale:.4f}" for s in pp.std)
    return (
        "# cardid model script: the device is fed raw uint8 RGB; normalise on chip with the contract's\n"
        "# per-channel mean/std (scaled to 0-255).\n"
        f"{name} = normalization([{mean}], [{std}])\n"
        "model_optimization_flavor(optimization_level=2, compression_level=0)\n"
    )


def export_hailo(
    model: torch.nn.Module,
    meta: dict,
    out: str | Path,
    calibration: list[np.ndarray],
    target: str = "hailo8l",
) -> dict:
    from cardid.export.onnx import export_onnx

    if target not in TARGETS:
        raise CardIDError(f"unknown Hailo target {target!r}; choose one of {', '.join(TARGETS)}")
    pp = Preprocess.from_dict(meta["preprocess"])
    if pp.channel_order != "RGB":
        raise CardIDError("the Hailo bundle expects an RGB contract (the camera feeds RGB)")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    onnx_path = export_onnx(model, meta, out / "model.onnx", static_batch=1, legacy=True)
    calib = calibration_crops(calibration, pp)
    np.save(out / "calib.npy", calib)
    write_bytes_atomic(out / "model.alls", model_script(pp).encode())
    check = precheck_ops(onnx_path)
    info = {
        "target": target,
        "onnx": "model.onnx",
        "opset": 17,
        "input": {
            "name": "input",
            "shape": [1, 3, pp.height, pp.width],
            "feed": "uint8 RGB, normalised on chip",
        },
        "output": {"name": "embedding", "dim": int(meta["embed_dim"])},
        "calibration": {
            "file": "calib.npy",
            "shape": list(calib.shape),
            "dtype": "uint8",
            "layout": "NHWC RGB",
        },
        "preprocess": pp.to_dict(),
        "source_identity": model_identity(meta),
        "precheck": check,
    }
    write_json_atomic(out / "hailo.json", info)
    write_bytes_atomic(out / "README.md", _readme(info).encode())
    return info


def _readme(info: dict) -> str:
    bad = ", ".join(info["precheck"]["unsupported"]) or "none"
    return f"""# Hailo bundle ({info["target"]})

Compile on a machine with the Hailo Dataflow Compiler (`hailo_sdk_client`, from the Hailo developer zone):

    cardid export --model <model dir> --target hailo --hailo-target {info["target"]} --compile --out <dir>

or by hand:

    from hailo_sdk_client import ClientRunner
    import numpy as np
    runner = ClientRunner(hw_arch="{info["target"]}")
    runner.translate_onnx_model("model.onnx", "cardid", net_input_shapes={{"input": {info["input"]["shape"]}}})
    runner.load_model_script(open("model.alls").read())
    runner.optimize(np.load("calib.npy"))          # uint8 NHWC RGB, {info["calibration"]["shape"]}
    open("model.hef", "wb").write(runner.compile())

Operators the pre-check could not confirm: {bad}. Target is explicit: `{info["target"]}` (a HEF for
hailo8 does not run on hailo8l).
"""


def compile_bundle(bundle: str | Path) -> Path:
    """translate → optimise → compile with the DFC; a clear next step when it is not installed."""
    bundle = Path(bundle)
    info = json.loads((bundle / "hailo.json").read_text())
    try:
        from hailo_sdk_client import ClientRunner
    except ImportError as e:
        raise CardIDError(
            "the Hailo Dataflow Compiler (hailo_sdk_client) is not installed here; the bundle is ready in "
            f"{bundle}: follow {bundle / 'README.md'} on a machine with the DFC"
        ) from e
    runner = ClientRunner(hw_arch=info["target"])
    runner.translate_onnx_model(
        str(bundle / "model.onnx"), "cardid", net_input_shapes={"input": info["input"]["shape"]}
    )
    runner.load_model_script((bundle / "model.alls").read_text())
    runner.optimize(np.load(bundle / "calib.npy"))
    hef = bundle / "model.hef"
    write_bytes_atomic(hef, runner.compile())
    return hef
