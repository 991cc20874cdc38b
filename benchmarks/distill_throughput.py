"""Distillation throughput: three students in our single pass vs the spec's three separate runs.

The spec distils each student in its own run: every step recomputes the teacher (fp32, no_grad),
runs one student, MSE, AdamW, ``loss.item()``. Ours: one teacher forward per batch (bf16 on CUDA)
feeds every student; one backward and one fused AdamW step for all of them. Same device, same
random-init models, same batch, one run; the ratio of student-updates per second is printed.
(Ours also renders and decodes each view once instead of three times; not counted here.)

    .venv/bin/python benchmarks/distill_throughput.py          # CPU: small teacher, tiny/small students
    python benchmarks/distill_throughput.py --teacher dinov3-vitl16-random --teacher-size 224 \\
        --students hailo,ios,android --batch 64                     # GPU: the real shapes
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from common import device_and_sync, report, timed

from cardid.models.backbones import create_backbone
from cardid.models.model import EmbeddingModel
from cardid.models.students import create_student
from cardid.train.distill import StudentSet
from cardid.train.losses import LossConfig, distill_loss


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--teacher", default="dinov3-small")
    ap.add_argument("--teacher-size", type=int, default=128)
    ap.add_argument("--students", default="tiny-cnn,tiny-vit,small-cnn")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--dim", type=int, default=768)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    dev, sync = device_and_sync()
    cuda = dev.type == "cuda"
    torch.manual_seed(0)
    teacher = EmbeddingModel(create_backbone(args.teacher, pretrained=False), args.dim).to(dev).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    names = args.students.split(",")
    built = {n: create_student(n, args.dim, pretrained=False) for n in names}
    xt = torch.randn(args.batch, 3, args.teacher_size, args.teacher_size, device=dev)
    xs = {n: torch.randn(args.batch, 3, pre.height, pre.width, device=dev) for n, (_, pre) in built.items()}

    # ---- the spec: one run per student, teacher recomputed, fp32
    def spec_total() -> float:
        total = 0.0
        for n, (student, _) in built.items():
            student.to(dev).train()
            opt = torch.optim.AdamW(student.parameters(), lr=1e-4, weight_decay=0.05)

            def step(student=student, opt=opt, n=n):
                with torch.no_grad():
                    t = teacher(xt)
                loss = F.mse_loss(student(xs[n]), t)
                opt.zero_grad()
                loss.backward()
                opt.step()
                loss.item()

            total += timed(step, args.steps, args.warmup, sync)
        return total

    # ---- ours: one teacher forward, all students, one optimizer
    def ours_total() -> float:
        sset = StudentSet({n: m for n, (m, _) in built.items()}).to(dev).train()
        opt = torch.optim.AdamW(sset.parameters(), lr=1e-4, weight_decay=0.05, fused=cuda)
        w = LossConfig()

        def step():
            with torch.no_grad(), torch.autocast(dev.type, dtype=torch.bfloat16, enabled=cuda):
                t = teacher(xt).float()
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=cuda):
                s = sset(xs)
            loss = sum(distill_loss(s[n], t, w)[0] for n in names)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        return timed(step, args.steps, args.warmup, sync)

    t_spec, t_ours = spec_total(), ours_total()
    updates = args.steps * args.batch * len(names)  # student-image updates
    res = {
        "device": torch.cuda.get_device_name() if cuda else "cpu",
        "threads": torch.get_num_threads(),
        "teacher": args.teacher,
        "students": names,
        "batch": args.batch,
        "spec_student_img_s": updates / t_spec,
        "ours_student_img_s": updates / t_ours,
        "speedup": t_spec / t_ours,
    }
    print(
        f"spec (3 runs): {res['spec_student_img_s']:8.1f} student-img/s   ours (1 pass): "
        f"{res['ours_student_img_s']:8.1f} student-img/s   × {res['speedup']:.2f}"
    )
    report(res, args.json)


if __name__ == "__main__":
    main()
