"""Pooling of a convolutional feature map into one vector, as part of the model.

A card is identified by *where* things are on it (art box on top, text below, number at the
bottom): a global average throws that layout away, and frozen ImageNet features pooled that way
barely shortlist a card. Layout-keeping pooling concatenates the whole map's pooled vector with one
vector per cell of a ``cols × rows`` grid (portrait: 3 wide, 4 tall), each L2-normalised, so every
region weighs the same. Pooling is GeM (generalised mean, p = 3: between average and max) or average.

Names: ``avg``, ``gem``, ``grid3x4`` (average cells), ``gem+grid3x4`` (GeM, global + cells).
"""

from __future__ import annotations

import re

import torch
import torch.nn.functional as F
from torch import nn

from cardid.errors import CardIDError

_NAME = re.compile(r"^(?:(?P<kind>avg|gem)(?:\+|$))?(?:grid(?P<cols>\d+)x(?P<rows>\d+))?$")


def parse_pooling(name: str) -> tuple[str, tuple[int, int] | None]:
    """``"gem+grid3x4"`` → ("gem", (3, 4)); ``"avg"`` → ("avg", None); bad names raise."""
    m = _NAME.match(name or "")
    if not m or not (m["kind"] or m["cols"]):
        raise CardIDError(
            f"unknown pooling {name!r} for a convolutional backbone (avg, gem, gridCxR, gem+gridCxR, avg+gridCxR)"
        )
    grid = (int(m["cols"]), int(m["rows"])) if m["cols"] else None
    if grid and (min(grid) < 1 or grid[0] * grid[1] > 64):
        raise CardIDError(f"grid {grid} out of range (1..64 cells)")
    return m["kind"] or "avg", grid


class FeaturePool(nn.Module):
    """(N, C, H, W) → (N, C·(global + cells)), unit norm overall. ``global`` is included when the
    name has a kind (``gem+grid3x4``) or no grid (``gem``); ``grid3x4`` alone pools only the cells."""

    def __init__(self, name: str, channels: int, p: float = 3.0, eps: float = 1e-6):
        super().__init__()
        self.name = name
        self.kind, self.grid = parse_pooling(name)
        self.with_global = self.grid is None or name.startswith(("avg+", "gem+"))
        self.p, self.eps = float(p), eps
        n = int(self.with_global) + (self.grid[0] * self.grid[1] if self.grid else 0)
        self.parts = n
        self.out_dim = channels * n

    def _pool(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        if self.kind == "gem":
            # GeM = (mean x^p)^(1/p), computed as s·(mean (x/s)^p)^(1/p) with s the map's maximum:
            # the same value, but x^p never exceeds 1 (x³ overflows fp16 once x > 40)
            x = x.float().clamp_min(self.eps)
            s = x.amax(dim=(2, 3), keepdim=True)
            return F.adaptive_avg_pool2d((x / s).pow(self.p), size).pow(1.0 / self.p) * s
        return F.adaptive_avg_pool2d(x.float(), size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = []
        if self.with_global:
            parts.append(F.normalize(self._pool(x, (1, 1)).flatten(1), dim=1))
        if self.grid is not None:
            cols, rows = self.grid
            cells = self._pool(x, (rows, cols))  # (N, C, rows, cols)
            parts.append(F.normalize(cells, dim=1).flatten(2).transpose(1, 2).flatten(1))
        out = torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]
        return out * (1.0 / self.parts**0.5)
