"""A linear query adapter learned from real photo ↔ gallery scan pairs.

A photo's crop and its card's scan land apart in embedding space in a systematic way (glare,
blur, sleeves, white balance): ``W`` maps a query embedding towards its scan's, ridge-regularised
towards the identity (with few pairs it stays close to doing nothing):

    W = argmin  Σ ||W q_i - g_i||²  +  λ ||W - I||²   =   (λI + Gᵀ Q)(λI + Qᵀ Q)⁻¹

Only queries are mapped (the gallery and its DB stay as built); the result is L2-normalised.
``λ`` is chosen by card-disjoint inner folds of the fitting pairs (:func:`choose_lambda`), never on
the photos the adapter is measured on. Numpy only: it runs wherever the embedder runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cardid.errors import CardIDError

LAMBDAS = (1.0, 3.0, 10.0, 30.0, 100.0, 300.0)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


@dataclass
class QueryAdapter:
    matrix: np.ndarray  # (dim, dim)
    lam: float
    pairs: int

    def __call__(self, q: np.ndarray) -> np.ndarray:
        return _unit(np.asarray(q, np.float64) @ self.matrix.T).astype(np.float32)


def fit_adapter(queries: np.ndarray, targets: np.ndarray, lam: float) -> QueryAdapter:
    """Ridge regression of ``targets`` (the true scans' embeddings) on ``queries``, towards identity."""
    q, g = np.asarray(queries, np.float64), np.asarray(targets, np.float64)
    if q.ndim != 2 or q.shape != g.shape or len(q) == 0:
        raise CardIDError(
            f"adapter pairs must be two (n, dim) arrays of one shape, got {q.shape} and {g.shape}"
        )
    if lam <= 0:
        raise CardIDError(f"the adapter's ridge λ must be > 0, got {lam}")
    eye = np.eye(q.shape[1])
    w = np.linalg.solve(lam * eye + q.T @ q, (lam * eye + q.T @ g)).T  # W (λI + QᵀQ) = λI + GᵀQ
    return QueryAdapter(w, lam, len(q))


def recall_at(queries: np.ndarray, gallery: np.ndarray, truth_rows: Sequence[int], k: int = 1) -> float:
    """Share of queries whose true gallery row is among their ``k`` nearest by cosine."""
    sims = np.asarray(queries) @ np.asarray(gallery).T
    top = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return float(np.mean([t in row for t, row in zip(truth_rows, top, strict=True)]))


def choose_lambda(
    queries: np.ndarray,
    gallery: np.ndarray,
    truth_rows: Sequence[int],
    groups: Sequence[int],
    lambdas: Sequence[float] = LAMBDAS,
) -> float:
    """The λ with the best Recall@1 on held-out *groups* (card-disjoint inner folds: ``groups[i]`` is
    query i's inner fold), fitting on the other groups each time."""
    groups = np.asarray(groups)
    folds = sorted(set(groups.tolist()))
    if len(folds) < 2:
        raise CardIDError("choosing the adapter's λ needs at least 2 inner folds")
    truth = np.asarray(truth_rows)
    scores = []
    for lam in lambdas:
        hits = 0.0
        for f in folds:
            fit, held = groups != f, groups == f
            a = fit_adapter(queries[fit], gallery[truth[fit]], lam)
            hits += recall_at(a(queries[held]), gallery, truth[held]) * held.sum()
        scores.append(hits / len(groups))
    return float(lambdas[int(np.argmax(scores))])
