"""Embedders: anything that turns RGB card crops into L2-normalised vectors.

Evaluation, DB build, calibration and recognition talk only to an :class:`Embedder`, so "the DB is
built with the deployed artefact" holds by construction. Implementations: PyTorch model
directories (here) and ONNX exports (:mod:`cardid.embed.onnx`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from cardid.preprocess import Preprocess


@runtime_checkable
class Embedder(Protocol):
    preprocess: Preprocess
    dim: int
    #: Short content hash of the weights: what a reference DB records and checks on every query.
    identity: str
    #: What the artefact is (name, kind, backbone, full weights hash, path); recorded in a DB.
    info: dict

    def embed_batch(self, batch: np.ndarray) -> np.ndarray:
        """Preprocessed float32 (N, 3, H, W) → float32 (N, dim), rows L2-normalised."""

    def embed(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """RGB uint8 images (any size) → float32 (N, dim)."""


class _Images(Dataset):
    def __init__(self, items: Sequence, preprocess: Preprocess, load: Callable | None):
        self.items, self.preprocess, self.load = items, preprocess, load

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> np.ndarray:
        item = self.items[i]
        return self.preprocess(self.load(item) if self.load else item)


class TorchEmbedder:
    """An :class:`EmbeddingModel` behind the Embedder interface (eval mode, no grad, batched)."""

    def __init__(
        self,
        model: torch.nn.Module,
        preprocess: Preprocess,
        identity: str = "in-memory",
        device: str | torch.device | None = None,
        batch_size: int = 64,
        amp: bool = True,
        info: dict | None = None,
    ):
        self.model, self.preprocess, self.identity = model, preprocess, identity
        self.info = {"identity": identity, "format": "torch", **(info or {})}
        self.device = torch.device(device) if device else next(model.parameters()).device
        self.batch_size, self.amp = batch_size, amp and self.device.type == "cuda"
        self.dim = int(model.embed_dim)

    @torch.no_grad()
    def embed_batch(self, batch: np.ndarray | torch.Tensor) -> np.ndarray:
        was_training = self.model.training
        self.model.eval()
        x = torch.as_tensor(batch).to(self.device, non_blocking=True)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            out = self.model(x)
        self.model.train(was_training)
        return out.float().cpu().numpy()

    def embed(
        self,
        images: Sequence,
        load: Callable | None = None,
        workers: int = 0,
        progress: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """Embed images (arrays, or items turned into arrays by ``load``, e.g. paths) in batches;
        ``workers`` > 0 decodes and preprocesses in parallel processes."""
        return embed_in_batches(self, images, load, workers, progress)


def embed_in_batches(
    embedder: Embedder,
    images: Sequence,
    load: Callable | None = None,
    workers: int = 0,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """The one batching loop of every Embedder: decode + preprocess (in ``workers`` processes when
    > 0), then ``embedder.embed_batch`` per ``embedder.batch_size`` images."""
    loader = DataLoader(
        _Images(images, embedder.preprocess, load),
        batch_size=embedder.batch_size,
        num_workers=workers,
        collate_fn=np.stack,
    )
    out = [np.zeros((0, embedder.dim), np.float32)]
    for batch in loader:
        out.append(embedder.embed_batch(batch))
        if progress:
            progress(len(batch))
    return np.concatenate(out)


def load_embedder(path: str | Path, device: str | None = None, batch_size: int = 64) -> Embedder:
    """Open a model artefact as an Embedder: a cardid model directory (PyTorch) or an ``.onnx``
    export (onnxruntime)."""
    from cardid.models.artifact import load_model_dir, model_identity

    if str(path).endswith(".onnx"):
        from cardid.embed.onnx import OnnxEmbedder

        return OnnxEmbedder(path, batch_size)

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
