"""Pieces both training loops share: evaluation on the run's gallery and
val views, and the loop policy (cadence, throughput, model selection, checkpoint content, finish)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cardid.embed import TorchEmbedder
from cardid.eval.retrieval import (
    CollapseThresholds,
    check_collapse,
    collapse_diagnostics,
    loo_nn_accuracy,
    retrieval_metrics,
)
from cardid.images import load_rgb
from cardid.io import write_json_atomic
from cardid.models.artifact import MODEL_JSON, mark_complete
from cardid.models.model import EmbeddingModel
from cardid.preprocess import Preprocess
from cardid.train.checkpoint import restore_rng, rng_state
from cardid.train.configs import LoopConfig
from cardid.train.data import TrainingData
from cardid.train.logs import plot_curves


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


# ----------------------------------------------------------------------------- loop policy
# What both loops decide the same way. Each loop still reads top to bottom; these are the rules
# it follows at each step: when to log, evaluate and checkpoint, which model is best, when to stop.


class Cadence:
    """When a loop logs, evaluates and checkpoints: every N steps, and always at the end of a phase
    (``ends``: the step counts at which each phase finishes; the last one ends the run)."""

    def __init__(self, cfg: LoopConfig, ends: list[int], eval_every: int | None = None):
        self.ends, self.total = set(ends), max(ends)
        self.log_every, self.checkpoint_every = cfg.log_every, cfg.checkpoint_every
        self.eval_every = eval_every or cfg.eval_every

    def log(self, done: int) -> bool:
        return done % self.log_every == 0 or done == self.total

    def eval(self, done: int) -> bool:
        return done % self.eval_every == 0 or done in self.ends

    def checkpoint(self, done: int) -> bool:
        return done % self.checkpoint_every == 0 or done in self.ends


class Throughput:
    """Training images per second since the last log line (evaluation time excluded)."""

    def __init__(self) -> None:
        self.restart()

    def restart(self) -> None:
        self.t0, self.seen = time.perf_counter(), 0

    def add(self, images: int) -> None:
        self.seen += images

    def take(self) -> float:
        rate = self.seen / max(time.perf_counter() - self.t0, 1e-9)
        self.restart()
        return round(rate, 1)


def _retrieval(metrics: dict[str, float], best: dict[str, Any]) -> tuple[tuple, tuple]:
    """(Recall@1, mAP@R) now and of the best so far (-1 before any)."""
    then = (best["recall@1"], best.get("metrics", {}).get("map@r", -1.0))
    return (metrics["recall@1"], metrics["map@r"]), then


def is_better(metrics: dict[str, float], best: dict[str, Any]) -> bool:
    """Selection on retrieval, never on a training loss or cosine: Recall@1, then mAP@R. Ties go to
    the later, longer-trained model (simulated validation saturates with pretrained backbones)."""
    now, then = _retrieval(metrics, best)
    return now >= then


def improved(metrics: dict[str, float], best: dict[str, Any], min_delta: float = 0.0) -> bool:
    """Strictly better than ``best``: Recall@1, then mAP@R, then the mean margin between the
    correct scan and the nearest other (which still moves once a small real validation set is
    all named) by more than ``min_delta``. What resets early stopping; anything else counts."""
    now, then = _retrieval(metrics, best)
    if now != then:
        return now > then
    return metrics.get("margin", 0.0) > best.get("metrics", {}).get("margin", -1.0) + min_delta


def no_best() -> dict[str, Any]:
    return {"recall@1": -1.0, "step": -1}


def memory_format(cfg: LoopConfig) -> torch.memory_format:
    """How the loop lays out its model's 4-D weights and its batches (``cfg.channels_last``)."""
    return torch.channels_last if cfg.channels_last else torch.contiguous_format


def batches_after_resume(loader, state: dict[str, Any] | None, device: torch.device):
    """The loader's batch iterator, then the checkpoint's RNG restored: creating the iterator may
    draw from the global RNG, so a resumed run must restore it afterwards to continue exactly."""
    batches = iter(loader)
    if state:
        restore_rng(state, device)
    return batches


def training_state(
    step: int, opt, sched, best: dict[str, Any], fingerprint: dict[str, str], device, **parts
) -> dict[str, Any]:
    """A checkpoint's content: the loop's own parts (models, phase, EMA…), then what every loop
    needs to resume exactly (optimizer, scheduler, step, RNG, best so far, the run's fingerprint)."""
    return {
        **parts,
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
        "step": step,
        **rng_state(device),
        "best": best,
        "fingerprint": fingerprint,
    }


def finish_run(out: Path, result: dict[str, Any], model_dirs: list[Path]) -> None:
    """A finished run: its best models become final artefacts, its metrics and curves are written."""
    for m in model_dirs:
        if (m / MODEL_JSON).is_file():
            mark_complete(m)
    write_json_atomic(out / "metrics.json", result)
    plot_curves(out / "train_log.jsonl", out / "curves.png")
