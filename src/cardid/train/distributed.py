"""torch.distributed setup from ``torchrun`` environment variables (single process otherwise)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn

from cardid.errors import CardIDError


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def from_main(self, flag: bool) -> bool:
        """Rank 0's decision, on every rank (e.g. "stop now": only rank 0 evaluates)."""
        if not self.enabled:
            return flag
        t = torch.tensor([int(flag)], device=self.device)
        dist.broadcast(t, 0)
        return bool(t.item())


def init_distributed(device: str = "auto") -> Dist:
    """Join the process group torchrun set up (nccl on CUDA, gloo on CPU); pick this rank's device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device not in ("auto", "cpu", "cuda"):
        raise CardIDError(f"device must be auto, cpu or cuda, got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise CardIDError("device=cuda but no CUDA GPU is visible here; use device=cpu or auto")
    use_cuda = torch.cuda.is_available() if device == "auto" else device == "cuda"
    dev = torch.device(f"cuda:{local}" if use_cuda else "cpu")
    if use_cuda:
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo", timeout=timedelta(minutes=30))
    return Dist(rank, world, local, dev)


def cleanup(d: Dist) -> None:
    if d.enabled and dist.is_initialized():
        dist.destroy_process_group()


def run_distributed(fn, cfg):
    """Call ``fn(cfg, dist)`` inside the process group torchrun set up (or a single process)."""
    d = init_distributed(cfg.device)
    try:
        return fn(cfg, d)
    finally:
        cleanup(d)


def check_in_sync(module: nn.Module, d: Dist) -> list[float]:
    """Under DDP every rank must end with identical weights (the margin head included): each
    rank's position-weighted parameter sum, gathered (one per rank; recorded, so a reader can
    compare them too); differing ones stop the run."""
    vec = torch.cat([p.detach().double().flatten() for p in module.parameters()]).to(d.device)
    fp = (vec * torch.linspace(1.0, 2.0, len(vec), dtype=torch.float64, device=d.device)).sum().reshape(1)
    if not d.enabled:
        return [float(fp.item())]
    every = [torch.zeros_like(fp) for _ in range(d.world)]
    dist.all_gather(every, fp)
    out = [float(x.item()) for x in every]
    if len(set(out)) != 1:
        raise RuntimeError(f"DDP ranks diverged: parameter fingerprints {out}")
    return out
