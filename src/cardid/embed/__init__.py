"""Embedders: anything that turns RGB card crops into L2-normalised vectors.

Evaluation, DB build, calibration and recognition talk only to an :class:`Embedder`, so "the DB is
built with the deployed artefact" holds by construction. Implementations: PyTorch model
directories (:mod:`cardid.embed.torch_embedder`) and ONNX exports (:mod:`cardid.embed.onnx`). This
module imports no torch: an ONNX export is opened without it.
"""

from __future__ import annotations

from pathlib import Path

from cardid.embed.base import Embedder, embed_in_batches

__all__ = ["Embedder", "TorchEmbedder", "embed_in_batches", "load_embedder"]


def __getattr__(name: str):
    if name == "TorchEmbedder":  # imported on first use: it needs torch
        from cardid.embed.torch_embedder import TorchEmbedder

        return TorchEmbedder
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load_embedder(path: str | Path, device: str | None = None, batch_size: int = 64) -> Embedder:
    """Open a model artefact as an Embedder: a cardid model directory (PyTorch) or an ``.onnx``
    export (onnxruntime, no torch)."""
    if str(path).endswith(".onnx"):
        from cardid.embed.onnx import OnnxEmbedder

        return OnnxEmbedder(path, batch_size)

    import torch

    from cardid.embed.torch_embedder import TorchEmbedder
    from cardid.models.artifact import load_model_dir, model_identity
    from cardid.preprocess import Preprocess

    dev = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model, meta = load_model_dir(path, dev)
    info = {
        "path": str(path),
        "name": meta.get("name"),
        "kind": meta.get("kind"),
        "backbone": (meta.get("backbone") or {}).get("name"),
        "weights_sha256": meta.get("weights_sha256"),
        "tensors_sha256": meta.get("tensors_sha256"),
    }
    return TorchEmbedder(
        model, Preprocess.from_dict(meta["preprocess"]), model_identity(meta), dev, batch_size, info=info
    )
