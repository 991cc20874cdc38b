"""Embedding models: backbone → pooling → projection → L2 norm; the teacher adds its margin head."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cardid.models.backbones import Backbone
from cardid.models.heads import ArcFace, ProjectionHead


class Center(nn.Module):
    """The frozen models' head: subtract a mean fitted on reference scans (no trainable weights).

    Pretrained features share a large common component (every card has a frame, text, a border);
    removing it spreads the cards apart on the sphere and lets the distinctive part decide."""

    def __init__(self, dim: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x - self.mean


HEADS = ("mlp", "center")


class EmbeddingModel(nn.Module):
    """Turns a preprocessed batch into L2-normalised embeddings (N, ``embed_dim``).

    ``head="mlp"``: the trained projection (backbone dim → hidden → ``embed_dim``);
    ``head="center"``: frozen features minus a fitted mean (``embed_dim`` = the backbone's)."""

    def __init__(
        self,
        backbone: Backbone,
        embed_dim: int = 768,
        dropout: float = 0.1,
        hidden_dim: int | None = None,
        head: str = "mlp",
        proj_norm: str | None = None,
    ):
        super().__init__()
        if head not in HEADS:
            raise ValueError(f"unknown head {head!r} (known: {', '.join(HEADS)})")
        self.backbone, self.head_kind = backbone, head
        if head == "center":
            self.embed_dim = backbone.out_dim
            self.proj = Center(backbone.out_dim)
        else:
            self.embed_dim = embed_dim
            self.proj = ProjectionHead(backbone.out_dim, embed_dim, hidden_dim, dropout, proj_norm)

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
