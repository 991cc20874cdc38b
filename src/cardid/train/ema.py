"""An exponential moving average of a model's weights (evaluated and exported instead of the raw
weights when a run asks for it)."""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """Exponential moving average of the embedder's weights (used for evaluation and export)."""

    def __init__(self, model: nn.Module, decay: float):
        self.decay, self.model = decay, copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        for e, p in zip(self.model.state_dict().values(), model.state_dict().values(), strict=True):
            if e.dtype.is_floating_point:
                e.lerp_(p, 1 - self.decay)
            else:
                e.copy_(p)
