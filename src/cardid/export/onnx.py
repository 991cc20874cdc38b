"""PyTorch model directory → ONNX (fp32, fp16, int8), carrying its preprocessing contract.

Input ``input`` (float32 N×3×H×W, already preprocessed by the stored contract), output
``embedding`` (N×D, L2-normalised). The dynamo exporter (opset 20) is the default; the legacy
TorchScript exporter (opset 17) gives the static batch-1 graph the Hailo compiler accepts.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from cardid import __version__
from cardid.embed.onnx import ONNX_FORMAT
from cardid.errors import CardIDError
from cardid.io import atomic_path
from cardid.preprocess import Preprocess

log = logging.getLogger(__name__)


@contextlib.contextmanager
def _quiet():
    """Exporter and quantiser chatter (INFO logs, prints) off; warnings and errors still show."""
    names = ["", "onnxscript", "onnx_ir", "torch.onnx", "torch.export"]
    levels = {n: logging.getLogger(n).level for n in names}
    for n in names:
        logging.getLogger(n).setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        for n, lv in levels.items():
            logging.getLogger(n).setLevel(lv)


def _metadata(meta: dict, precision: str) -> dict[str, str]:
    from cardid.models.artifact import model_identity

    source = {
        "name": meta.get("name"),
        "kind": meta.get("kind"),
        "backbone": (meta.get("backbone") or {}).get("name"),
        "weights_sha256": meta.get("weights_sha256"),
        "classes": meta.get("classes"),
    }
    extra = {}
    if meta.get("pretrained_weights"):  # where the starting weights came from, and their licence
        extra["pretrained_weights"] = json.dumps(meta["pretrained_weights"], sort_keys=True)
    return {
        **extra,
        "format": ONNX_FORMAT,
        "preprocess": json.dumps(meta["preprocess"], sort_keys=True),
        "embed_dim": str(meta["embed_dim"]),
        "source_identity": model_identity(meta),
        "source": json.dumps(source, sort_keys=True),
        "precision": precision,
        "cardid_version": __version__,
    }


def set_metadata(path: Path, fields: dict[str, str]) -> None:
    import onnx

    model = onnx.load(str(path))
    keep = [p for p in model.metadata_props if not p.key.startswith("cardid.")]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    for k, v in fields.items():
        p = model.metadata_props.add()
        p.key, p.value = f"cardid.{k}", v
    onnx.save(model, str(path))


def export_onnx(
    model: torch.nn.Module,
    meta: dict,
    out: str | Path,
    static_batch: int | None = None,
    legacy: bool = False,
    simplify: bool = True,
) -> Path:
    """Export ``model`` (its ``meta`` from ``model.json``) to one self-contained ``.onnx`` file.

    ``static_batch`` fixes the batch dimension (the Hailo compiler wants 1); ``legacy`` uses the
    TorchScript exporter at opset 17."""
    out = Path(out)
    pp = Preprocess.from_dict(meta["preprocess"])
    model = model.eval().cpu()
    x = torch.zeros(static_batch or 2, 3, pp.height, pp.width)
    with atomic_path(out) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kw: dict = {"input_names": ["input"], "output_names": ["embedding"], "verbose": False}
        if legacy:
            kw.update(dynamo=False, opset_version=17)
            if not static_batch:
                kw["dynamic_axes"] = {"input": {0: "batch"}, "embedding": {0: "batch"}}
        else:
            kw.update(dynamo=True, external_data=False)
            if not static_batch:
                kw["dynamic_shapes"] = {"x": {0: torch.export.Dim("batch", min=1, max=4096)}}
        try:
            with _quiet():
                torch.onnx.export(model, (x,), str(tmp), **kw)
        except Exception as e:
            raise CardIDError(f"ONNX export of {meta.get('name')} failed: {type(e).__name__}: {e}") from e
        if simplify:
            _slim(tmp)
        set_metadata(tmp, _metadata(meta, "fp32"))
    return out


def _slim(path: Path) -> None:
    """Fold constants and drop dead nodes with onnxslim when it is installed and helps."""
    try:
        import onnxslim
    except ImportError:
        return
    try:
        slim = onnxslim.slim(str(path))
    except Exception as e:  # simplification is an optimisation; a failure keeps the plain export
        log.warning("onnxslim failed (%s); keeping the unsimplified graph", e)
        return
    import onnx

    onnx.save(slim, str(path))


#: Kept in float32 in the fp16 export: pooling and normalisation. GeM raises features to the power
#: p (x³ overflows fp16's 65,504 once x > 40) and sums of squares overflow the same way; the convs,
#: where the time goes, still run in fp16.
FP32_OPS = ["Pow", "ReduceMean", "ReduceSum", "ReduceL2", "ReduceSumSquare", "Sqrt", "Div", "LpNormalization"]


def to_fp16(src: str | Path, out: str | Path) -> Path:
    """fp16 weights and compute with float32 input/output (onnxruntime's converter); pooling and
    normalisation stay float32 (:data:`FP32_OPS`)."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = onnx.load(str(src))
    props = {p.key: p.value for p in model.metadata_props}
    half = convert_float_to_float16(model, keep_io_types=True, op_block_list=FP32_OPS)
    with atomic_path(out) as tmp:
        onnx.save(half, str(tmp))
        set_metadata(
            tmp,
            {k[len("cardid.") :]: v for k, v in props.items() if k.startswith("cardid.")}
            | {"precision": "fp16"},
        )
    return Path(out)


class _Reader:
    def __init__(self, batches: Sequence[np.ndarray]):
        self.it = iter(batches)

    def get_next(self):
        b = next(self.it, None)
        return None if b is None else {"input": b.astype(np.float32)}


def to_int8(src: str | Path, out: str | Path, calibration: np.ndarray, batch: int = 16) -> Path:
    """Static int8 (QDQ, per-channel weights) calibrated on ``calibration``: preprocessed float32
    N×3×H×W camera-like crops — exactly what the deployed model is fed."""
    import onnx
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if calibration.ndim != 4 or len(calibration) == 0:
        raise CardIDError(f"int8 calibration needs N×3×H×W crops, got shape {calibration.shape}")
    props = {p.key: p.value for p in onnx.load(str(src), load_external_data=False).metadata_props}
    out = Path(out)
    with atomic_path(out) as tmp, atomic_path(out.with_suffix(".pre.onnx")) as pre:
        try:
            quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
            inp = pre
        except Exception as e:  # pre-processing only helps; quantise the plain graph otherwise
            log.warning("quant_pre_process failed (%s); quantising the plain graph", e)
            inp = Path(src)
        batches = [calibration[i : i + batch] for i in range(0, len(calibration), batch)]
        with _quiet():
            _quantize(inp, tmp, batches)
        fields = {k[len("cardid.") :]: v for k, v in props.items() if k.startswith("cardid.")}
        set_metadata(tmp, fields | {"precision": "int8", "calibration_crops": str(len(calibration))})
    return out


def _quantize(inp: Path, out: Path, batches: list[np.ndarray]) -> None:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    quantize_static(
        str(inp),
        str(out),
        _Reader(batches),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.Percentile,
        extra_options={"CalibPercentile": 99.99},
    )
