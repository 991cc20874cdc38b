"""Evaluation at full scale: 35k queries × 17.6k gallery × 768-d, time and peak memory.

Ours: chunked matrix product + top-k (memory bounded by the chunk). The seed's `evaluate()`:
`torch.cdist` all-pairs over the evaluated set, then argmin / topk. Each method runs in its own
process so peak RSS is its own.

    .venv/bin/python benchmarks/eval_retrieval.py [--queries 35000 --gallery 17592 --dim 768]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np
import torch


def data(nq, ng, d):
    g = torch.nn.functional.normalize(torch.randn(ng, d, generator=torch.Generator().manual_seed(0)), dim=1)
    labels = torch.randint(0, ng, (nq,), generator=torch.Generator().manual_seed(1))
    q = torch.nn.functional.normalize(
        g[labels] + 0.03 * torch.randn(nq, d, generator=torch.Generator().manual_seed(2)), dim=1
    )
    return q, g, labels


def run(method: str, nq: int, ng: int, d: int) -> dict:
    q, g, labels = data(nq, ng, d)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.perf_counter()
    if method == "ours":
        from cardid.eval.retrieval import retrieval_metrics

        r1 = retrieval_metrics(q.numpy(), labels.numpy(), g.numpy(), np.arange(ng), ks=(1, 5))["recall@1"]
    elif method == "seed_query_gallery":  # cdist between queries and gallery, as the seed would for retrieval
        dist = torch.cdist(q, g)
        r1 = float((dist.argmin(1) == labels).float().mean())
        dist.topk(5, dim=1, largest=False)
    else:  # the seed's evaluate(): all pairs within the evaluated set (leave-one-out)
        dist = torch.cdist(q, q)
        dist.fill_diagonal_(float("inf"))
        nn_idx = dist.argmin(1)
        r1 = float((labels[nn_idx] == labels).float().mean())
        dist.topk(5, dim=1, largest=False)
    sec = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "method": method,
        "seconds": round(sec, 2),
        "peak_extra_mib": round((peak - base) / 1024, 1),
        "recall@1": r1,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--queries", type=int, default=35000)
    ap.add_argument("--gallery", type=int, default=17592)
    ap.add_argument("--dim", type=int, default=768)
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(run(args.one, args.queries, args.gallery, args.dim)))
        return
    print(
        f"{args.queries} queries × {args.gallery} gallery × {args.dim}-d on {torch.get_num_threads()} threads"
    )
    for m in ("ours", "seed_query_gallery", "seed_all_pairs"):
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--one",
                m,
                "--queries",
                str(args.queries),
                "--gallery",
                str(args.gallery),
                "--dim",
                str(args.dim),
            ],
            capture_output=True,
            text=True,
        )
        if out.returncode:
            print(f"{m:<20} failed: {out.stderr.strip().splitlines()[-1] if out.stderr else out.returncode}")
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(
            f"{m:<20} {r['seconds']:>8.2f} s   peak +{r['peak_extra_mib']:>8.1f} MiB   R@1 {r['recall@1']:.3f}"
        )


if __name__ == "__main__":
    main()
