"""Distillation losses on L2-normalised embeddings: ``cosine`` (1 − cos), ``relational`` (match the
in-batch similarity matrix, RKD-style) and the spec's ``mse`` (tiny on unit vectors: it let the
origin project's student collapse unnoticed)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict


class LossConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cosine: float = 1.0
    relational: float = 1.0
    mse: float = 0.0  # the spec's loss: nn.MSELoss on unit vectors


def distill_loss(s: torch.Tensor, t: torch.Tensor, w: LossConfig) -> tuple[torch.Tensor, dict[str, float]]:
    """Weighted sum of the distillation losses between unit student (s) and teacher (t) embeddings."""
    s, t = s.float(), t.float()
    parts: dict[str, torch.Tensor] = {}
    if w.cosine:
        parts["cosine"] = (1 - (s * t).sum(1)).mean()
    if w.relational:
        n = s.shape[0]
        off = ~torch.eye(n, dtype=torch.bool, device=s.device)
        parts["relational"] = F.mse_loss((s @ s.T)[off], (t @ t.T)[off])
    if w.mse:
        parts["mse"] = F.mse_loss(s, t)
    total = sum(getattr(w, k) * v for k, v in parts.items())
    return total, {k: float(v.detach()) for k, v in parts.items()}
