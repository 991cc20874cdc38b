"""Exact top-k by cosine: the search under both the reference DB and evaluation.

NumPy only (one BLAS matrix product per chunk of queries, then a partial sort), so recognition
with an ONNX model needs no torch.
"""

from __future__ import annotations

import numpy as np


def topk_cosine(
    queries,
    gallery,
    k: int,
    chunk: int = 4096,
    exclude_self: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` gallery rows by dot product for every query (inputs assumed L2-normalised), best
    first: ``(scores float32 (n, k), rows int64 (n, k))``. ``exclude_self`` (queries == gallery)
    drops each row's own match: the leave-one-out protocol."""
    q = np.asarray(_numpy(queries), np.float32)
    g = np.asarray(_numpy(gallery), np.float32)
    if q.ndim == 1:
        q = q[None]
    k = max(0, min(k, g.shape[0] - (1 if exclude_self else 0)))
    scores, rows = [], []
    for s in range(0, q.shape[0], chunk):
        sim = q[s : s + chunk] @ g.T
        if exclude_self:
            r = np.arange(sim.shape[0])
            sim[r, r + s] = -np.inf
        if k < sim.shape[1]:
            part = np.argpartition(-sim, k - 1, axis=1)[:, :k] if k else np.zeros((len(sim), 0), np.int64)
        else:
            part = np.broadcast_to(np.arange(sim.shape[1]), sim.shape)
        vals = np.take_along_axis(sim, part, axis=1)
        order = np.argsort(-vals, axis=1, kind="stable")
        scores.append(np.take_along_axis(vals, order, axis=1))
        rows.append(np.take_along_axis(part, order, axis=1).astype(np.int64))
    if not scores:
        return np.zeros((0, k), np.float32), np.zeros((0, k), np.int64)
    return np.concatenate(scores).astype(np.float32), np.concatenate(rows)


def _numpy(x):
    if hasattr(x, "detach"):  # a torch tensor, without importing torch here
        return x.detach().cpu().float().numpy()
    return x
