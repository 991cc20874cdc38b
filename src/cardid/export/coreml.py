"""PyTorch model → CoreML ``mlprogram`` (``.mlpackage``) for iOS, fp16, camera-image input.

The app feeds a camera pixel buffer (``ImageType``, RGB, 0–255). CoreML's ImageType has one scale
for all channels, so the per-channel mean/std of the contract is applied inside the converted
model (a first layer that cannot be folded away), exactly as in training. Conversion goes through
``torch.export`` (the ``jit.trace`` path fails for DINOv3). CoreML prediction needs macOS: on
Linux the package's interface is checked and parity is recorded as not run, with the reason.
"""

from __future__ import annotations

import platform
import warnings
from pathlib import Path

import numpy as np
import torch

from cardid.errors import CardIDError
from cardid.models.artifact import model_identity
from cardid.preprocess import Preprocess


class Normalised(torch.nn.Module):
    """Image in [0, 1] (RGB) → the contract's normalisation → the embedding model."""

    def __init__(self, model: torch.nn.Module, pp: Preprocess):
        super().__init__()
        if pp.channel_order != "RGB":
            raise CardIDError("CoreML export expects an RGB contract")
        self.model = model
        scale = 255.0 / pp.input_scale  # the image arrives as x/255; the contract wants x/input_scale
        self.register_buffer("scale", torch.tensor(scale))
        self.register_buffer("mean", torch.tensor(pp.mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(pp.std, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model((x * self.scale - self.mean) / self.std)


def export_coreml(model: torch.nn.Module, meta: dict, out: str | Path) -> dict:
    try:
        import coremltools as ct
    except ImportError as e:
        raise CardIDError("CoreML export needs coremltools: pip install 'cardid[coreml]'") from e
    pp = Preprocess.from_dict(meta["preprocess"])
    out = Path(out)
    wrapped = Normalised(model.eval().cpu(), pp).eval()
    x = torch.rand(1, 3, pp.height, pp.width)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ep = torch.export.export(wrapped, (x,)).run_decompositions({})
            ml = ct.convert(
                ep,
                inputs=[
                    ct.ImageType(
                        name="image",
                        shape=(1, 3, pp.height, pp.width),
                        scale=1 / 255.0,
                        bias=[0.0, 0.0, 0.0],
                        color_layout=ct.colorlayout.RGB,
                    )
                ],
                outputs=[ct.TensorType(name="embedding")],
                convert_to="mlprogram",
                compute_precision=ct.precision.FLOAT16,
                minimum_deployment_target=ct.target.iOS17,
            )
        except Exception as e:
            raise CardIDError(f"CoreML conversion failed: {type(e).__name__}: {e}") from e
    ml.short_description = f"cardid {meta.get('name')} card embedding ({meta['embed_dim']}-d, L2-normalised)"
    ml.user_defined_metadata.update(
        {
            "cardid.preprocess": Preprocess.to_json(pp),
            "cardid.source_identity": model_identity(meta),
            "cardid.embed_dim": str(meta["embed_dim"]),
        }
    )
    if out.exists():
        import shutil

        shutil.rmtree(out)
    ml.save(str(out))
    return {"path": str(out), **coreml_interface(out), "parity": coreml_parity(out, model, pp)}


def coreml_interface(path: str | Path) -> dict:
    import coremltools as ct

    spec = ct.models.MLModel(str(path), skip_model_load=True).get_spec()
    inp, outp = spec.description.input[0], spec.description.output[0]
    img = inp.type.imageType
    return {
        "input": {
            "name": inp.name,
            "type": inp.type.WhichOneof("Type"),
            "width": img.width,
            "height": img.height,
        },
        "output": {"name": outp.name, "type": outp.type.WhichOneof("Type")},
        "spec_version": spec.specificationVersion,
    }


def coreml_parity(path: Path, model: torch.nn.Module, pp: Preprocess) -> dict:
    if platform.system() != "Darwin":
        return {"checked": False, "reason": "CoreML prediction needs macOS; interface checked only"}
    import coremltools as ct
    from PIL import Image

    ml = ct.models.MLModel(str(path))
    rng = np.random.default_rng(0)
    diffs = []
    for _ in range(4):
        img = rng.integers(0, 256, (pp.height, pp.width, 3), dtype=np.uint8)
        got = np.asarray(ml.predict({"image": Image.fromarray(img)})["embedding"]).reshape(-1)
        with torch.no_grad():
            ref = model(torch.from_numpy(pp.normalize(img))[None]).numpy().reshape(-1)
        diffs.append(float(got @ ref / (np.linalg.norm(got) * np.linalg.norm(ref))))
    return {"checked": True, "min_cosine": min(diffs)}
