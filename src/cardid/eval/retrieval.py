"""Retrieval metrics as deployed (photo query → gallery of clean scans) and collapse diagnostics.

Similarity search (:func:`cardid.search.topk_cosine`) is a chunked matrix product + top-k: memory is bounded by
``chunk × gallery`` scores, never ``queries × gallery`` (the seed's ``cdist`` was O(N²)).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from cardid.errors import CardIDError
from cardid.search import topk_cosine


class CollapseError(CardIDError):
    """Embeddings collapsed: unrelated cards look alike. Training must stop, loudly."""


def retrieval_metrics(q_emb, q_labels, g_emb, g_labels, ks=(1, 5), chunk: int = 4096) -> dict[str, float]:
    """Recall@k (is a correct gallery item among the first k) and mAP@R (R = correct items per query)."""
    q_labels, g_labels = np.asarray(q_labels), np.asarray(g_labels)
    if len(q_labels) == 0:
        raise CardIDError("no queries to evaluate")
    counts = np.bincount(g_labels, minlength=max(g_labels.max(), q_labels.max()) + 1)
    r = counts[q_labels]
    kmax = min(int(max(max(ks), r.max())), len(g_labels))
    _, idx = topk_cosine(q_emb, g_emb, kmax, chunk)
    hits = g_labels[idx] == q_labels[:, None]
    out = {f"recall@{k}": float(hits[:, :k].any(1).mean()) for k in ks}
    # mAP@R: mean over queries of (1/R) Σ_{i ≤ R} precision@i · rel(i)
    prec = np.cumsum(hits, 1) / np.arange(1, kmax + 1)
    mask = np.arange(kmax)[None, :] < r[:, None]
    out["map@r"] = float(((prec * hits * mask).sum(1) / np.maximum(r, 1)).mean())
    out["margin"] = mean_margin(q_emb, q_labels, g_emb, g_labels)
    out["queries"] = len(q_labels)
    return out


def mean_margin(q_emb, q_labels, g_emb, g_labels, chunk: int = 512) -> float:
    """Mean over queries of (cosine to the nearest correct gallery item − cosine to the nearest
    other one): still moves when Recall@1 has saturated, so a run can tell it is still learning."""
    q = np.asarray(q_emb, np.float32)
    g = np.asarray(g_emb, np.float32)
    q_labels, g_labels = np.asarray(q_labels), np.asarray(g_labels)
    total = 0.0
    for i in range(0, len(q), chunk):
        sims = q[i : i + chunk] @ g.T
        same = g_labels[None, :] == q_labels[i : i + chunk, None]
        pos = np.where(same, sims, -np.inf).max(1)
        neg = np.where(same, -np.inf, sims).max(1)
        ok = np.isfinite(pos) & np.isfinite(neg)
        total += float((pos - neg)[ok].sum())
    return total / max(len(q), 1)


def loo_nn_accuracy(emb, labels, chunk: int = 4096) -> float:
    """The seed's protocol: each embedding's nearest *other* embedding has the same label."""
    labels = np.asarray(labels)
    _, idx = topk_cosine(emb, emb, 1, chunk, exclude_self=True)
    return float((labels[idx[:, 0]] == labels).mean())


@dataclass
class CollapseThresholds:
    """Beyond these a model cannot tell cards apart (the seed's student: unrelated cards at 0.998)."""

    max_mean_cos: float = 0.98
    min_effective_rank: float = 2.0


def collapse_diagnostics(emb: np.ndarray | torch.Tensor) -> dict[str, float]:
    """Mean off-diagonal cosine (in O(N·D), no N² matrix), effective rank, mean per-dim std."""
    e = torch.as_tensor(emb).double()
    n = e.shape[0]
    s = e.sum(0)
    mean_cos = float(((s @ s) - (e * e).sum()) / max(n * (n - 1), 1))
    sv = torch.linalg.svdvals(e)  # uncentred: a collapsed set has one dominant direction
    p = sv / sv.sum().clamp_min(1e-12)
    eff_rank = float(torch.exp(-(p * torch.log(p.clamp_min(1e-12))).sum()))
    return {"mean_offdiag_cos": mean_cos, "effective_rank": eff_rank, "dim_std": float(e.std(0).mean())}


def check_collapse(
    diag: dict[str, float], th: CollapseThresholds = CollapseThresholds(), what: str = ""
) -> None:
    if diag["mean_offdiag_cos"] > th.max_mean_cos or diag["effective_rank"] < th.min_effective_rank:
        raise CollapseError(
            f"embedding collapse{' in ' + what if what else ''}: unrelated gallery cards have mean cosine "
            f"{diag['mean_offdiag_cos']:.3f} (limit {th.max_mean_cos}) and effective rank "
            f"{diag['effective_rank']:.2f} (minimum {th.min_effective_rank}); the model cannot tell cards apart"
        )
