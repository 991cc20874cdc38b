"""Pieces both training loops share: evaluation on the run's gallery and val views."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from cardid.embed import TorchEmbedder
from cardid.eval.retrieval import (
    CollapseThresholds,
    check_collapse,
    collapse_diagnostics,
    loo_nn_accuracy,
    retrieval_metrics,
)
from cardid.io import load_rgb
from cardid.models.model import EmbeddingModel
from cardid.preprocess import Preprocess
from cardid.synth.photo import PhotoSimConfig
from cardid.train.data import TrainingData


class DataConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    train: str | None = None  # a catalog (online synthesis) or a dataset (train/ val/ gallery/)
    val: str | None = None  # a query CSV (real photos) or a dataset; default: online val views
    val_views: int = 2
    workers: int = 2
    photo: PhotoSimConfig = PhotoSimConfig()


class LoopConfig(BaseModel):
    """Settings every training loop has (the teacher's and distillation's configs extend it)."""

    model_config = ConfigDict(extra="forbid")
    data: DataConfig = DataConfig()
    batch_size: int = Field(64, ge=1)  # global: across all processes
    weight_decay: float = 0.05
    grad_clip: float = 1.0
    eval_every: int = Field(250, ge=1)
    checkpoint_every: int = Field(250, ge=1)
    log_every: int = Field(10, ge=1)
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"  # cuda: every visible GPU, one per process
    compile: bool = False  # torch.compile the training forward (after the DDP wrap; once per phase)
    out_dir: str = "runs/train"
    checkpoint_dir: str | None = None  # default: <out_dir>/checkpoints
    restart_if_unreadable: bool = False  # every checkpoint unreadable: start at step 0 (else stop)
    collapse_max_mean_cos: float = 0.98
    collapse_min_effective_rank: float = 2.0

    @property
    def collapse_thresholds(self) -> CollapseThresholds:
        return CollapseThresholds(self.collapse_max_mean_cos, self.collapse_min_effective_rank)


def embed_gallery_and_queries(
    model: EmbeddingModel, pre: Preprocess, data: TrainingData, batch_size: int, workers: int
) -> tuple[np.ndarray, np.ndarray, list[int]]:
    emb = TorchEmbedder(model, pre, batch_size=batch_size)
    gallery = data.gallery
    g = emb.embed(gallery.class_index.idx_to_class, load=gallery.load_image, workers=workers)
    q = emb.embed(data.val_items, load=data.val_loader or load_rgb, workers=workers)
    c2i = gallery.class_index.class_to_idx
    return g, q, [c2i[c] for c in data.val_ids]


def evaluate_embedder(
    model: EmbeddingModel,
    pre: Preprocess,
    data: TrainingData,
    batch_size: int,
    workers: int,
    thresholds: CollapseThresholds,
    check: bool = True,
    cross_gallery: np.ndarray | None = None,
    what: str = "the gallery embeddings",
) -> tuple[dict[str, float], np.ndarray]:
    """Photo → gallery retrieval on the run's data + collapse diagnostics (raises on collapse).

    ``cross_gallery``: another model's gallery embeddings (the teacher's) to also score this model's
    queries against (``cross/recall@k``). Returns the metrics and this model's gallery embeddings."""
    g, q, q_labels = embed_gallery_and_queries(model, pre, data, batch_size, workers)
    g_labels = list(range(len(data.gallery)))
    metrics = retrieval_metrics(q, q_labels, g, g_labels)
    metrics["loo_nn_acc"] = loo_nn_accuracy(q, q_labels)
    diag = collapse_diagnostics(g)
    metrics.update(diag)
    if cross_gallery is not None:
        cross = retrieval_metrics(q, q_labels, cross_gallery, g_labels)
        metrics.update({f"cross/{k}": v for k, v in cross.items() if k != "queries"})
    if check:
        check_collapse(diag, thresholds, what)
    return metrics, g
