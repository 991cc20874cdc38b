"""Distillation: one teacher forward per batch feeds every student.

Each step renders one augmented view per sample, preprocesses it once per contract (the teacher's
and each student's input size and normalisation), runs the frozen teacher once (or reads its
embedding from a cache of K fixed views per card, whose student inputs are then kept in memory
from the same pass: rendered once, not once per draw), and trains every student on it with one
optimizer step. Losses on L2-normalised vectors: ``cosine`` (1 − cos), ``relational`` (match the
in-batch similarity matrix, RKD-style) and the spec's ``mse`` (tiny on unit vectors: it let the
origin project's student collapse unnoticed). Students are evaluated as deployed (own gallery,
and cross-model against the teacher's gallery), selected on Recall@1, and checked for collapse.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, Dataset

from cardid.data.datasets import MultiContract
from cardid.errors import CardIDError
from cardid.eval.retrieval import retrieval_metrics
from cardid.models.artifact import load_model_dir, model_identity, save_model_dir
from cardid.models.students import create_student
from cardid.preprocess import Preprocess
from cardid.train.checkpoint import load_latest, save_checkpoint
from cardid.train.common import (
    Cadence,
    Throughput,
    batches_after_resume,
    embed_gallery_and_queries,
    evaluate_embedder,
    finish_run,
    improved,
    is_better,
    memory_format,
    no_best,
    training_state,
)
from cardid.train.configs import DistillConfig
from cardid.train.data import (
    Indexed,
    KeptViews,
    StepBatches,
    cache_indices,
    kept_views_gib,
    load_training_data,
)
from cardid.train.distributed import Dist, run_distributed
from cardid.train.logs import open_run
from cardid.train.losses import distill_loss
from cardid.train.schedule import warmup_cosine

log = logging.getLogger(__name__)


class StudentSet(nn.Module):
    """All students in one module: one DDP wrap, one optimizer, one backward per step."""

    def __init__(self, students: dict[str, nn.Module]):
        super().__init__()
        self.students = nn.ModuleDict(students)

    def forward(self, views: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {name: m(views[name]) for name, m in self.students.items()}


@torch.no_grad()
def _teacher_embed(teacher: nn.Module, x: torch.Tensor, amp: bool) -> torch.Tensor:
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=amp):
        return teacher(x).float()


def distill(cfg: DistillConfig) -> dict[str, Any]:
    """Distil (or resume distilling) every student; returns their best metrics. Rank 0 writes outputs."""
    return run_distributed(_distill, cfg)


def _distill(cfg: DistillConfig, d: Dist) -> dict[str, Any]:
    if not cfg.teacher:
        raise CardIDError("no teacher: set --teacher to a teacher model directory (model.json + weights)")
    if not cfg.data.train:
        raise CardIDError("no training data: set data.train (a catalog or a dataset directory)")
    if not cfg.students:
        raise CardIDError("no students to distil")
    out = Path(cfg.out_dir)
    ckpt_dir = Path(cfg.checkpoint_dir or out / "checkpoints")
    torch.manual_seed(cfg.seed)
    amp = d.device.type == "cuda"
    fmt = memory_format(cfg)
    teacher, tmeta = load_model_dir(cfg.teacher, d.device)
    teacher.to(memory_format=fmt)
    for p in teacher.parameters():
        p.requires_grad_(False)
    tpre, dim = Preprocess.from_dict(tmeta["preprocess"]), int(tmeta["embed_dim"])
    students, contracts = {}, {"teacher": tpre}
    for name in cfg.students:
        model, pre = create_student(name, dim, cfg.pretrained, cfg.weights.get(name))
        if model.embed_dim != dim:
            raise CardIDError(f"student {name} embeds in {model.embed_dim} dimensions, the teacher in {dim}")
        students[name], contracts[name] = model.to(d.device, memory_format=fmt), pre
    data = load_training_data(
        cfg.data.train, tpre, cfg.data.photo, cfg.seed, cfg.data.val, cfg.data.val_views
    )
    classes = list(data.gallery.class_index.idx_to_class)
    tmeta_classes = (tmeta.get("classes") or {}).get("count")
    if tmeta_classes and tmeta_classes != len(classes):
        log.warning("teacher was trained on %d cards, distilling on %d", tmeta_classes, len(classes))
    thresholds = cfg.collapse_thresholds
    sset = StudentSet(students)
    fp = {
        "teacher": model_identity(tmeta),
        "students": ",".join(cfg.students),
        "classes": hashlib.sha256("\n".join(classes).encode()).hexdigest()[:16],
        "run": json.dumps(
            {k: getattr(cfg, k) for k in ("steps", "batch_size", "seed", "teacher_cache_views")}
            | {"loss": cfg.loss.model_dump()},
            sort_keys=True,
        ),
    }

    # ---- teacher reference: its gallery (for cross-model retrieval) and its own score
    g_t, q_t, q_labels = embed_gallery_and_queries(teacher, tpre, data, cfg.batch_size, cfg.data.workers)
    teacher_r1 = retrieval_metrics(q_t, q_labels, g_t, list(range(len(classes))))["recall@1"]

    # ---- data: the same view under every contract; optionally cached teacher embeddings
    base = MultiContract(data.train, contracts)
    cache = None
    if cfg.teacher_cache_views:
        idx = cache_indices(data, cfg.teacher_cache_views)
        own = {k: v for k, v in contracts.items() if k != "teacher"}
        gib = kept_views_gib(own, len(idx))
        keep = gib <= cfg.keep_views_gib
        # kept: each student's geometry alone (uint8), normalised when drawn
        pass_contracts = {"teacher": tpre} | ({k: v.resize_image for k, v in own.items()} if keep else {})
        dataset: Dataset = Indexed(MultiContract(data.train, pass_contracts), idx)
        rows, kept, labels = [], {k: [] for k in own} if keep else {}, []
        for views, y, _ in DataLoader(dataset, batch_size=cfg.batch_size, num_workers=cfg.data.workers):
            rows.append(_teacher_embed(teacher, views["teacher"].to(d.device, memory_format=fmt), amp))
            for k in kept:
                kept[k].append(views[k])
            labels.append(y)
        cache = torch.cat(rows)
        if keep:  # the pass rendered each view once for the teacher: the students draw it from memory
            dataset = KeptViews({k: torch.cat(v) for k, v in kept.items()}, torch.cat(labels), own)
        else:
            dataset = Indexed(MultiContract(data.train, own), idx)
        if d.main:
            log.info(
                "teacher cache: %d views embedded once (%d per card)%s",
                len(idx),
                cfg.teacher_cache_views,
                f"; the students' inputs kept ({gib:.2f} GiB)" if keep else "",
            )
    else:
        dataset = Indexed(base, list(range(data.num_items))) if data.mode == "folder" else base

    # ---- resume
    state = load_latest(ckpt_dir, fp, cfg.restart_if_unreadable)
    start = 0
    best = {n: no_best() for n in cfg.students}
    stale, stopped = dict.fromkeys(cfg.students, 0), False  # evaluations without a better student
    if state:
        sset.load_state_dict(state["students"])
        start, best = int(state["step"]), state["best"]
        stale, stopped = state.get("stale", stale), bool(state.get("stopped"))
    tlog = open_run(out, cfg, start, d.main)
    if d.main:
        log.info(
            "distilling %s from %s (val Recall@1 %.4f): %d cards, %s data, global batch %d, %d steps on %s",
            ", ".join(cfg.students),
            cfg.teacher,
            teacher_r1,
            len(classes),
            data.mode,
            cfg.batch_size,
            cfg.steps,
            d.device,
        )
    model = DDP(sset, device_ids=[d.device.index] if amp else None) if d.enabled else sset
    if cfg.compile:
        model = torch.compile(model)
    opt = torch.optim.AdamW(sset.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, fused=amp)
    sched = warmup_cosine(opt, cfg.steps, cfg.warmup_steps)
    if state:
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
    sampler = StepBatches(len(dataset), cfg.batch_size, cfg.seed, start, cfg.steps, d.rank, d.world)
    workers = 0 if isinstance(dataset, KeptViews) else cfg.data.workers  # kept: nothing left to render
    loader = DataLoader(dataset, batch_sampler=sampler, num_workers=workers, pin_memory=amp)
    cadence = Cadence(cfg, ends=[cfg.steps])

    result: dict[str, Any] = {}
    speed = Throughput()
    batches = iter(()) if stopped else batches_after_resume(loader, state, d.device)
    for step, batch in enumerate(batches, start=start):
        views, y = batch[0], batch[1]
        views = {k: v.to(d.device, non_blocking=True, memory_format=fmt) for k, v in views.items()}
        if cache is not None:
            t_emb = cache[batch[2].to(cache.device)]
        else:
            t_emb = _teacher_embed(teacher, views.pop("teacher"), amp)  # once per batch, for every student
        sset.train()
        with torch.autocast(d.device.type, dtype=torch.bfloat16, enabled=amp):
            s_emb = model(views)
        losses = {n: distill_loss(s_emb[n], t_emb, cfg.loss) for n in cfg.students}
        total = sum(v[0] for v in losses.values())
        opt.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(sset.parameters(), cfg.grad_clip)
        opt.step()
        sched.step()
        speed.add(y.shape[0] * d.world)
        done = step + 1

        if cadence.log(done):
            rec: dict[str, Any] = {
                "step": done,
                "loss": round(float(total.detach()), 5),
                "lr": opt.param_groups[0]["lr"],
                "img_s": speed.take(),
                "global_batch": cfg.batch_size,
            }
            for n in cfg.students:
                rec[f"{n}/loss"] = round(float(losses[n][0].detach()), 5)
                rec[f"{n}/cos_to_teacher"] = round(
                    float((s_emb[n].detach().float() * t_emb).sum(1).mean()), 4
                )
            tlog.write(rec)
            if d.main:
                log.info(
                    "step=%d loss=%.4f lr=%.2e img_s=%.1f global_batch=%d %s",
                    done,
                    rec["loss"],
                    rec["lr"],
                    rec["img_s"],
                    cfg.batch_size,
                    " ".join(f"{n}_cos={rec[f'{n}/cos_to_teacher']:.3f}" for n in cfg.students),
                )

        if cadence.eval(done):
            if d.main:
                rec = {"step": done, "val/teacher/recall@1": teacher_r1}
                for n in cfg.students:
                    m, _ = evaluate_embedder(
                        students[n],
                        contracts[n],
                        data,
                        cfg.batch_size,
                        cfg.data.workers,
                        thresholds,
                        cross_gallery=g_t,
                        what=f"student {n!r}",
                    )
                    result[n] = m
                    rec.update({f"val/{n}/{k}": v for k, v in m.items()})
                    log.info(
                        "eval step=%d student=%s recall@1=%.4f recall@5=%.4f cross_recall@1=%.4f "
                        "mean_cos=%.3f eff_rank=%.1f (teacher recall@1=%.4f)",
                        done,
                        n,
                        m["recall@1"],
                        m["recall@5"],
                        m["cross/recall@1"],
                        m["mean_offdiag_cos"],
                        m["effective_rank"],
                        teacher_r1,
                    )
                    stale[n] = 0 if improved(m, best[n], cfg.min_delta) else stale[n] + 1
                    if is_better(m, best[n]):
                        best[n] = {"recall@1": m["recall@1"], "step": done, "metrics": m}
                        save_model_dir(
                            students[n],
                            out / "students" / n,
                            name=n,
                            kind="student",
                            preprocess=contracts[n],
                            pooling=students[n].backbone.pooling,
                            complete=False,
                            classes=classes,
                            metrics={"val": m, "step": done, "teacher_val_recall@1": teacher_r1},
                            config=cfg.model_dump(mode="json"),
                            extra={
                                "teacher": {
                                    "dir": str(cfg.teacher),
                                    "identity": model_identity(tmeta),
                                    "name": tmeta.get("name"),
                                    "embed_dim": dim,
                                }
                            },
                        )
                tlog.write(rec)
                speed.restart()  # evaluation time is not training throughput
            d.barrier()
            stopped = d.from_main(cfg.patience > 0 and min(stale.values()) >= cfg.patience)
        if cadence.checkpoint(done) or stopped:
            if d.main:
                parts = {"students": sset.state_dict(), "stale": stale, "stopped": stopped}
                save_checkpoint(ckpt_dir, done, training_state(done, opt, sched, best, fp, d.device, **parts))
            d.barrier()
        if stopped:
            if d.main:
                log.info("stopped at step %d: no better student in %d evaluations", done, cfg.patience)
            break

    summary = {
        "teacher_val_recall@1": teacher_r1,
        "best": best,
        "final": result,
        "steps": cfg.steps,
        "stopped_early": stopped,
        "global_batch": cfg.batch_size,
        "world_size": d.world,
    }
    if d.main:
        finish_run(out, summary, [out / "students" / n for n in cfg.students])
    return summary


def students_dir(out_dir: str | Path, preset: str) -> Path:
    return Path(out_dir) / "students" / preset


__all__ = ["distill", "students_dir"]
