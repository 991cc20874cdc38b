"""Teacher fine-tuning: backbone + projection + ArcFace, two phases, evaluated as deployed.

Read top to bottom: config → build → resume → for each step (phase switch, batch, forward,
backward, step, log, checkpoint, evaluate) → outputs. Phase 1 trains the projection and the margin
head on a frozen backbone; phase 2 also trains the last N backbone blocks with a small learning rate.
Which parameters train is decided on the plain module *before* it is wrapped in DDP, and the wrap
is rebuilt at each phase switch; the margin head lives inside the wrapped module.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader

from cardid.errors import CardIDError
from cardid.models.artifact import save_model_dir
from cardid.models.backbones import create_backbone
from cardid.models.heads import ArcFace
from cardid.models.model import EmbeddingModel, Teacher
from cardid.train.checkpoint import load_latest, save_checkpoint
from cardid.train.common import (
    Cadence,
    Throughput,
    batches_after_resume,
    evaluate_embedder,
    finish_run,
    improved,
    is_better,
    memory_format,
    no_best,
    training_state,
)
from cardid.train.configs import (
    PhaseConfig,
    TeacherConfig,
)
from cardid.train.data import StepBatches, load_training_data
from cardid.train.distributed import Dist, check_in_sync, run_distributed
from cardid.train.ema import EMA
from cardid.train.logs import open_run
from cardid.train.schedule import warmup_cosine

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- build
def build_teacher(cfg: TeacherConfig, num_classes: int) -> Teacher:
    m = cfg.model
    backbone = create_backbone(
        m.backbone,
        source=m.source,
        revision=m.revision,
        pretrained=m.pretrained,
        pooling=m.pooling,
        kwargs=m.backbone_kwargs or None,
    )
    embedder = EmbeddingModel(backbone, m.embed_dim, m.dropout, m.proj_hidden, proj_norm=m.proj_norm)
    head = ArcFace(m.embed_dim, num_classes, cfg.head.margin, cfg.head.scale, cfg.head.subcenters)
    return Teacher(embedder, head)


def fingerprint(cfg: TeacherConfig, teacher: Teacher, classes: list[str]) -> dict[str, str]:
    spec = teacher.embedder.backbone.spec
    arch = json.dumps(
        {
            "name": spec.name,
            "config": spec.config,
            "pooling": cfg.model.pooling,
            "embed_dim": cfg.model.embed_dim,
            "proj_hidden": cfg.model.proj_hidden,
            "proj_norm": cfg.model.proj_norm,
            "subcenters": cfg.head.subcenters,
        },
        sort_keys=True,
        default=str,
    )
    return {
        "architecture": hashlib.sha256(arch.encode()).hexdigest()[:16],
        "classes": hashlib.sha256("\n".join(classes).encode()).hexdigest()[:16],
        "num_classes": str(len(classes)),
        "batch_size": str(cfg.batch_size),
        "seed": str(cfg.seed),
        "phases": f"{cfg.phase1.steps}+{cfg.phase2.steps}",
    }


def configure_phase(teacher: Teacher, phase: PhaseConfig, weight_decay: float) -> list[dict[str, Any]]:
    """Freeze/unfreeze on the *unwrapped* module and return the optimizer's parameter groups."""
    backbone = teacher.embedder.backbone
    for p in backbone.parameters():
        p.requires_grad_(False)
    train_blocks = backbone.blocks[-phase.unfreeze_last_n :] if phase.unfreeze_last_n > 0 else []
    if train_blocks:
        train_blocks = train_blocks + backbone.tail  # the final norm sits after the last block
    bb_params = list({id(p): p for b in train_blocks for p in b.parameters()}.values())
    for p in bb_params:
        p.requires_grad_(True)
    head_params = list(teacher.embedder.proj.parameters()) + list(teacher.head.parameters())
    groups = [{"params": head_params, "lr": phase.lr, "weight_decay": weight_decay, "name": "head"}]
    if bb_params:
        if phase.backbone_lr <= 0:
            raise CardIDError("unfreeze_last_n > 0 needs backbone_lr > 0")
        groups.append(
            {"params": bb_params, "lr": phase.backbone_lr, "weight_decay": weight_decay, "name": "backbone"}
        )
    return groups


# ----------------------------------------------------------------------------- loop
def train_teacher(cfg: TeacherConfig) -> dict[str, Any]:
    """Train (or resume) a teacher; returns the final metrics. Rank 0 writes every output."""
    return run_distributed(_train, cfg)


def _train(cfg: TeacherConfig, d: Dist) -> dict[str, Any]:
    if not cfg.data.train:
        raise CardIDError("no training data: set data.train (a catalog or a dataset directory)")
    out = Path(cfg.out_dir)
    ckpt_dir = Path(cfg.checkpoint_dir or out / "checkpoints")
    torch.manual_seed(cfg.seed)
    pre = cfg.model.contract()
    data = load_training_data(cfg.data.train, pre, cfg.data.photo, cfg.seed, cfg.data.val, cfg.data.val_views)
    classes = list(data.gallery.class_index.idx_to_class)
    fmt = memory_format(cfg)
    teacher = build_teacher(cfg, len(classes)).to(d.device, memory_format=fmt)
    fp = fingerprint(cfg, teacher, classes)
    thresholds = cfg.collapse_thresholds
    phases = [cfg.phase1, cfg.phase2]
    bounds = [cfg.phase1.steps, cfg.total_steps]
    cadence = Cadence(cfg, ends=bounds)

    # ---- resume
    state = load_latest(ckpt_dir, fp, cfg.restart_if_unreadable)
    start, best, stale, stopped = 0, no_best(), 0, False
    ema = EMA(teacher.embedder, cfg.ema_decay) if cfg.ema_decay else None
    if state:
        teacher.load_state_dict(state["model"])
        start, best = int(state["step"]), state["best"]
        stale, stopped = int(state.get("stale", 0)), bool(state.get("stopped"))
        if ema and state.get("ema"):
            ema.model.load_state_dict(state["ema"])
    tlog = open_run(out, cfg, start, d.main)
    if d.main:
        log.info(
            "teacher: %s, %d classes, %s data, global batch %d (%d per process × %d), %d+%d steps on %s",
            teacher.embedder.backbone.spec.name,
            len(classes),
            data.mode,
            cfg.batch_size,
            cfg.batch_size // d.world,
            d.world,
            cfg.phase1.steps,
            cfg.phase2.steps,
            d.device,
        )

    sampler = StepBatches(data.num_items, cfg.batch_size, cfg.seed, start, cfg.total_steps, d.rank, d.world)
    loader = DataLoader(
        data.train,
        batch_sampler=sampler,
        num_workers=cfg.data.workers,
        pin_memory=d.device.type == "cuda",
        persistent_workers=False,
    )
    amp = d.device.type == "cuda"
    # epochs are derived, never planned: one epoch = every training image (folder) or every card (online) once
    epoch_size = data.num_items if data.mode == "folder" else len(classes)
    phase_idx, model, opt, sched = -1, None, None, None
    last_phase = 1 if cfg.phase2.steps else 0  # early stopping ends the run, so only in its last phase
    metrics: dict[str, Any] = best.get("metrics", {})
    speed = Throughput()
    batches = iter(()) if stopped else batches_after_resume(loader, state, d.device)
    for step, (x, y) in enumerate(batches, start=start):
        # ---- phase switch: decide trainable parameters on the plain module, then wrap
        p_idx = 0 if step < bounds[0] else 1
        if p_idx != phase_idx:
            phase_idx = p_idx
            phase = phases[phase_idx]
            groups = configure_phase(teacher, phase, cfg.weight_decay)
            model = DDP(teacher, device_ids=[d.device.index] if amp else None) if d.enabled else teacher
            if cfg.compile:  # trainable parameters are fixed for the phase: compile the wrapped module
                model = torch.compile(model)
            opt = torch.optim.AdamW(groups, fused=amp)
            sched = warmup_cosine(opt, phase.steps, phase.warmup_steps)
            if state and state.get("phase") == phase_idx and state["step"] == step:
                opt.load_state_dict(state["optimizer"])
                sched.load_state_dict(state["scheduler"])
            else:
                stale = 0  # a new phase: its own patience
            n_train = sum(p.numel() for g in groups for p in g["params"])
            if d.main:
                log.info(
                    "phase %d: %d trainable parameters, peak lr %s",
                    phase_idx + 1,
                    n_train,
                    {g["name"]: g["initial_lr"] for g in opt.param_groups},
                )
        teacher.train()
        x = x.to(d.device, non_blocking=True, memory_format=fmt)
        y = y.to(d.device, non_blocking=True)
        with torch.autocast(d.device.type, dtype=torch.bfloat16, enabled=amp):
            loss, cos, _ = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(
            [p for g in opt.param_groups for p in g["params"]], cfg.grad_clip
        )
        opt.step()
        sched.step()
        if ema:
            ema.update(teacher.embedder)
        speed.add(x.shape[0] * d.world)
        done = step + 1

        if cadence.log(done):
            acc = (cos.argmax(1) == y).float().mean().item()
            rec = {
                "step": done,
                "phase": phase_idx + 1,
                "loss": round(loss.item(), 5),
                "acc": round(acc, 4),
                "lr": opt.param_groups[0]["lr"],
                "grad_norm": round(float(gnorm), 4),
                "img_s": speed.take(),
                "global_batch": cfg.batch_size,
                "epoch": round(done * cfg.batch_size / epoch_size, 3),
            }
            tlog.write(rec)
            if d.main:
                log.info(
                    "step=%d phase=%d loss=%.4f acc=%.3f lr=%.2e img_s=%.1f global_batch=%d",
                    done,
                    phase_idx + 1,
                    rec["loss"],
                    acc,
                    rec["lr"],
                    rec["img_s"],
                    cfg.batch_size,
                )

        if cadence.eval(done):
            if d.main:
                eval_model = ema.model if ema else teacher.embedder
                metrics, _ = evaluate_embedder(
                    eval_model, pre, data, cfg.batch_size, cfg.data.workers, thresholds
                )
                tlog.write(
                    {"step": done, "phase": phase_idx + 1, **{f"val/{k}": v for k, v in metrics.items()}}
                )
                log.info(
                    "eval step=%d recall@1=%.4f recall@5=%.4f map@r=%.4f mean_cos=%.3f eff_rank=%.1f",
                    done,
                    metrics["recall@1"],
                    metrics["recall@5"],
                    metrics["map@r"],
                    metrics["mean_offdiag_cos"],
                    metrics["effective_rank"],
                )
                speed.restart()  # evaluation time is not training throughput
                stale = 0 if improved(metrics, best, cfg.min_delta) else stale + 1
                if is_better(metrics, best):
                    best = {"recall@1": metrics["recall@1"], "step": done, "metrics": metrics}
                    save_model_dir(
                        eval_model,
                        out,
                        name="teacher",
                        kind="teacher",
                        preprocess=pre,
                        pooling=cfg.model.pooling,
                        classes=classes,
                        metrics={"val": metrics, "step": done},
                        config=cfg.model_dump(mode="json"),
                        complete=False,
                    )
            d.barrier()
            stopped = d.from_main(cfg.patience > 0 and phase_idx == last_phase and stale >= cfg.patience)
        if cadence.checkpoint(done) or stopped:
            if d.main:
                parts = {
                    "model": teacher.state_dict(),
                    "phase": phase_idx,
                    "stale": stale,
                    "stopped": stopped,
                }
                parts["ema"] = ema.model.state_dict() if ema else None
                save_checkpoint(ckpt_dir, done, training_state(done, opt, sched, best, fp, d.device, **parts))
            d.barrier()
        if stopped:
            if d.main:
                log.info("stopped at step %d: no better model in %d evaluations", done, stale)
            break

    sync = check_in_sync(teacher, d)
    result = {
        "best": best,
        "final": metrics,
        "steps": cfg.total_steps,
        "stopped_early": stopped,
        "global_batch": cfg.batch_size,
        "world_size": d.world,
        "classes": len(classes),
        "rank_fingerprints": sync,  # one per process: equal when the ranks (margin head included) agree
    }
    if d.main:
        finish_run(out, result, [out])
    return result
