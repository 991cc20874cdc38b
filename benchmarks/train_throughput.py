"""Training-step throughput: our teacher loop vs a faithful re-implementation of the seed's loop.

Same model (random init), same batch, same device, one run. Phase 1 = frozen backbone (projection +
ArcFace train), phase 2 = last N blocks unfrozen. The seed's loop (PRD_06 `train_epoch`): fp32, eager,
plain AdamW, `loss.item()` and a full normalised-weight matmul for accuracy on every step, the
backbone called with its default settings. Ours: bf16 autocast on CUDA, fused AdamW, SDPA attention,
frozen blocks outside autograd, optional `torch.compile`, no per-step host sync.

    .venv/bin/python benchmarks/train_throughput.py                      # CPU, small config
    python benchmarks/train_throughput.py --backbone dinov3-vitl16-random --image 224 \\
        --batch 64 --classes 17592 --compile                                 # GPU, the real ViT-L/16 shape
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from common import device_and_sync, report, timed
from torch import nn

from cardid.models.backbones import create_backbone
from cardid.models.heads import ArcFace
from cardid.models.model import EmbeddingModel, Teacher
from cardid.train.configs import PhaseConfig
from cardid.train.teacher import configure_phase

H100_BF16_PEAK = 989e12  # dense FLOP/s


class SeedArcFace(nn.Module):
    """The spec's ArcFaceLoss, verbatim in behaviour."""

    def __init__(self, d, n, margin=0.5, scale=64.0):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n, d))
        nn.init.xavier_uniform_(self.weight)
        self.scale = scale
        self.register_buffer("cos_m", torch.cos(torch.tensor(margin)))
        self.register_buffer("sin_m", torch.sin(torch.tensor(margin)))
        self.register_buffer("threshold", torch.cos(torch.tensor(torch.pi - margin)))
        self.register_buffer("mm", torch.sin(torch.tensor(torch.pi - margin)) * margin)

    def forward(self, emb, labels):
        W = F.normalize(self.weight, p=2, dim=1)
        cosine = torch.mm(emb, W.t())
        sine = torch.sqrt(torch.clamp(1.0 - cosine**2, 1e-7, 1.0))
        phi = torch.where(cosine > self.threshold, cosine * self.cos_m - sine * self.sin_m, cosine - self.mm)
        one_hot = torch.zeros_like(cosine)
        one_hot.scatter_(1, labels.view(-1, 1), 1)
        return F.cross_entropy((one_hot * phi + (1.0 - one_hot) * cosine) * self.scale, labels)


def vit_forward_flops(cfg: dict, image: int) -> float:
    """Forward FLOPs per image of a ViT (2 × MACs of the linear layers and attention)."""
    d, L, p = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["patch_size"]
    t = 1 + cfg.get("num_register_tokens", 0) + (image // p) ** 2
    per_block = 4 * t * d * d + 2 * t * d * cfg["intermediate_size"] + 2 * t * t * d
    return 2 * (L * per_block + (image // p) ** 2 * 3 * p * p * d)


def bench_seed(args, phase: int, x, y, dev, sync) -> float:
    """The seed's loop: its own model object with identical weights, fp32, eager, per-step syncs."""
    torch.manual_seed(0)
    bb = create_backbone(args.backbone, pretrained=False)
    model = EmbeddingModel(bb, 768).to(dev)
    head = SeedArcFace(768, args.classes).to(dev)
    for p in bb.parameters():
        p.requires_grad = False
    if phase == 2:
        for b in bb.blocks[-args.unfreeze :]:
            for p in b.parameters():
                p.requires_grad = True
        params = [p for p in model.parameters() if p.requires_grad] + list(head.parameters())
    else:
        params = list(model.proj.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.05)

    def step():
        emb = model(x)
        loss = head(emb, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        loss.item()
        with torch.no_grad():
            (emb @ F.normalize(head.weight, dim=1).t()).argmax(1).eq(y).sum().item()

    return timed(step, args.steps, args.warmup, sync)


def bench_ours(args, phase: int, x, y, dev, sync) -> tuple[float, dict]:
    cuda = dev.type == "cuda"
    torch.manual_seed(0)
    teacher = Teacher(
        EmbeddingModel(create_backbone(args.backbone, pretrained=False), 768), ArcFace(768, args.classes)
    ).to(dev)
    pc = PhaseConfig(
        steps=args.steps,
        lr=1e-4,
        backbone_lr=1e-5 if phase == 2 else 0.0,
        unfreeze_last_n=args.unfreeze if phase == 2 else 0,
    )
    opt = torch.optim.AdamW(configure_phase(teacher, pc, 0.05), fused=cuda)
    model = torch.compile(teacher) if args.compile else teacher

    def step():
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=cuda):
            loss, _, _ = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return timed(step, args.steps, args.warmup, sync), teacher.embedder.backbone.spec.config


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbone", default="dinov3-small")
    ap.add_argument("--image", type=int, default=128)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--classes", type=int, default=1000)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--unfreeze", type=int, default=4)
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    dev, sync = device_and_sync()
    cuda = dev.type == "cuda"
    torch.manual_seed(0)
    x = torch.randn(args.batch, 3, args.image, args.image, device=dev)
    y = torch.randint(0, args.classes, (args.batch,), device=dev)
    results = {
        "device": torch.cuda.get_device_name() if cuda else "cpu",
        "threads": torch.get_num_threads(),
        "backbone": args.backbone,
        "image": args.image,
        "batch": args.batch,
        "classes": args.classes,
    }

    for phase in (1, 2):
        t_seed = bench_seed(args, phase, x, y, dev, sync)
        t_ours, bb_cfg = bench_ours(args, phase, x, y, dev, sync)
        n = args.steps * args.batch
        r = {"seed_img_s": n / t_seed, "ours_img_s": n / t_ours, "speedup": t_seed / t_ours}
        if "hidden_size" in bb_cfg:
            fwd = vit_forward_flops(bb_cfg, args.image)
            frac = args.unfreeze / bb_cfg["num_hidden_layers"] if phase == 2 else 0.0
            per_img = fwd * (1 + 2 * frac)  # frozen part forward only; trainable blocks fwd + 2× bwd
            r["tflops_per_s_ours"] = per_img * r["ours_img_s"] / 1e12
            if cuda:
                r["mfu_ours"] = per_img * r["ours_img_s"] / H100_BF16_PEAK
                r["mfu_seed"] = per_img * r["seed_img_s"] / H100_BF16_PEAK
        results[f"phase{phase}"] = r
        print(
            f"phase {phase}: seed {r['seed_img_s']:8.1f} img/s   ours {r['ours_img_s']:8.1f} img/s   "
            f"× {r['speedup']:.2f}" + (f"   MFU {r['mfu_ours']:.1%}" if "mfu_ours" in r else "")
        )
        if cuda:
            torch.cuda.empty_cache()
    report(results, args.json)


if __name__ == "__main__":
    main()
