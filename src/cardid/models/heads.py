"""Projection head and margin heads (ArcFace, sub-center ArcFace)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class ProjectionHead(nn.Module):
    """[norm] → Linear(in→hidden) → GELU → Dropout → Linear(hidden→out), as in the seed (1024→1024→768)."""

    def __init__(
        self,
        in_dim: int,
        out_dim: int = 768,
        hidden_dim: int | None = None,
        dropout: float = 0.1,
        input_norm: str | None = None,
    ):
        super().__init__()
        hidden_dim = hidden_dim or in_dim
        # Pooled pretrained features are all positive with a large common component, and a grid of
        # unit cells gives entries ~1/sqrt(dim): standardise them first or the head starts collapsed.
        if input_norm not in (None, "batchnorm", "layernorm"):
            raise ValueError(f"unknown projection input_norm {input_norm!r} (batchnorm, layernorm)")
        self.input_norm = input_norm
        norm = {None: nn.Identity, "batchnorm": nn.BatchNorm1d, "layernorm": nn.LayerNorm}[input_norm]
        self.norm = norm(in_dim)
        self.net = nn.Sequential(
            nn.Linear(in_dim, hidden_dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden_dim, out_dim)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.norm(x))


class ArcFace(nn.Module):
    """Additive angular margin: logits = s·cos(θ_y + m) for the true class, s·cos θ_j otherwise.

    Numerically stable: cosines are computed in fp32 and clamped, sin θ uses a clamped square root,
    and past θ > π − m the target logit falls back to the monotonic ``cos θ − m·sin m`` so the loss
    keeps decreasing with θ. ``subcenters > 1`` gives sub-center ArcFace: each class keeps K centres
    and the closest one counts (robust to noisy or multi-modal classes).
    """

    def __init__(
        self, embed_dim: int, num_classes: int, margin: float = 0.5, scale: float = 64.0, subcenters: int = 1
    ):
        super().__init__()
        self.num_classes, self.margin, self.scale, self.subcenters = num_classes, margin, scale, subcenters
        self.weight = nn.Parameter(torch.empty(num_classes * subcenters, embed_dim))
        nn.init.xavier_uniform_(self.weight)
        self.cos_m, self.sin_m = math.cos(margin), math.sin(margin)
        self.th, self.mm = math.cos(math.pi - margin), math.sin(math.pi - margin) * margin

    def cosine(self, emb: torch.Tensor) -> torch.Tensor:
        cos = F.linear(F.normalize(emb.float(), dim=1), F.normalize(self.weight.float(), dim=1))
        if self.subcenters > 1:
            cos = cos.view(-1, self.num_classes, self.subcenters).amax(dim=2)
        return cos.clamp(-1.0, 1.0)

    def forward(self, emb: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (loss, cosine logits without margin) for accuracy monitoring."""
        cos = self.cosine(emb)
        sin = torch.sqrt((1.0 - cos * cos).clamp_min(1e-7))
        phi = cos * self.cos_m - sin * self.sin_m
        phi = torch.where(cos > self.th, phi, cos - self.mm)
        onehot = F.one_hot(labels, self.num_classes).bool()
        logits = torch.where(onehot, phi, cos) * self.scale
        return F.cross_entropy(logits, labels), cos
