"""Embedding models: backbone → pooling → projection → L2 norm; the teacher adds its margin head."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cardid.models.backbones import Backbone
from cardid.models.heads import ArcFace, ProjectionHead


class EmbeddingModel(nn.Module):
    """Turns a preprocessed batch into L2-normalised embeddings (N, ``embed_dim``)."""

    def __init__(
        self, backbone: Backbone, embed_dim: int = 768, dropout: float = 0.1, hidden_dim: int | None = None
    ):
        super().__init__()
        self.backbone = backbone
        self.embed_dim = embed_dim
        self.proj = ProjectionHead(backbone.out_dim, embed_dim, hidden_dim, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.proj(self.backbone(x)).float(), dim=1)


class Teacher(nn.Module):
    """Embedding model + ArcFace head in one module, so DDP wraps (and syncs) the margin head too."""

    def __init__(self, embedder: EmbeddingModel, head: ArcFace):
        super().__init__()
        self.embedder, self.head = embedder, head

    def forward(
        self, x: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        emb = self.embedder(x)
        loss, cos = self.head(emb, labels)
        return loss, cos, emb
