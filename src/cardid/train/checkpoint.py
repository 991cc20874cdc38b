"""Atomic training checkpoints that resume exactly, loaded without unpickling code.

A checkpoint holds the whole training state (model incl. margin head, optimizer, scheduler, step,
phase, RNG, EMA, best score) and a *fingerprint* of the run (backbone architecture, class count,
dims): resuming from a checkpoint of another backbone or class count is refused before anything
is overwritten. Files are written to a temporary name and renamed, so a SIGKILL mid-write leaves
the previous checkpoint intact.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import torch

from cardid.errors import CardIDError
from cardid.io import atomic_path

log = logging.getLogger(__name__)
_NAME = re.compile(r"^ckpt-(\d{8})\.pt$")


def checkpoint_path(directory: Path, step: int) -> Path:
    return Path(directory) / f"ckpt-{step:08d}.pt"


def list_checkpoints(directory: str | Path) -> list[tuple[int, Path]]:
    d = Path(directory)
    if not d.is_dir():
        return []
    return sorted((int(m.group(1)), p) for p in d.iterdir() if (m := _NAME.match(p.name)))


def save_checkpoint(directory: str | Path, step: int, state: dict[str, Any], keep: int = 2) -> Path:
    path = checkpoint_path(Path(directory), step)
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    for _, old in list_checkpoints(directory)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def load_latest(
    directory: str | Path, fingerprint: dict[str, Any], restart_if_unreadable: bool = False
) -> dict[str, Any] | None:
    """The newest readable checkpoint (a torn file falls back to the previous one), checked against
    this run's fingerprint; ``None`` when there is none. When checkpoints exist but none can be
    read, the run stops (hours of training must not restart at step 0 unnoticed) unless
    ``restart_if_unreadable``."""
    found = list_checkpoints(directory)
    errors = []
    for step, path in reversed(found):
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            if not isinstance(state, dict):
                raise ValueError(f"holds a {type(state).__name__}, not a training state")
        except Exception as e:  # truncated or foreign file: try the previous one
            log.warning("checkpoint %s unreadable (%s); trying an older one", path, e)
            errors.append(f"{path.name}: {str(e).splitlines()[0][:120] if str(e) else type(e).__name__}")
            continue
        theirs = state.get("fingerprint", {})
        diff = sorted(k for k in set(theirs) | set(fingerprint) if theirs.get(k) != fingerprint.get(k))
        if diff:
            raise CardIDError(
                f"checkpoint {path} belongs to a different run ({', '.join(diff)} differ): use another "
                "--checkpoint-dir or remove it; nothing was overwritten"
            )
        log.info("resuming from %s (step %d)", path, step)
        return state
    if found and not restart_if_unreadable:
        raise CardIDError(
            f"all {len(found)} checkpoint(s) in {directory} are unreadable ({'; '.join(errors)}); "
            "nothing was resumed or overwritten. Remove them, or set restart_if_unreadable=true "
            "(--set restart_if_unreadable=true) to start again from step 0"
        )
    if found:
        log.warning("every checkpoint in %s is unreadable: starting again from step 0, as asked", directory)
    return None


def rng_state(device: torch.device) -> dict[str, Any]:
    """The random state a checkpoint must carry for an exact resume (dropout masks)."""
    return {
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
    }


def restore_rng(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch_rng"])
    if device.type == "cuda" and state.get("cuda_rng") is not None:
        torch.cuda.set_rng_state(state["cuda_rng"], device)
