"""A PyTorch :class:`~cardid.models.model.EmbeddingModel` behind the Embedder interface."""

from __future__ import annotations

import numpy as np
import torch

from cardid.embed.base import BatchedEmbedder
from cardid.preprocess import Preprocess


class TorchEmbedder(BatchedEmbedder):
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
