"""Pretrained features on real crops: frozen vs fine-tuned vs from scratch, side by side in one run.

Queries: the 16 real dev crops, and the two seeded harder sets built from them and the gallery
(:mod:`cardid.eval.hardsets`: real crops × 8 sloppy-finder/worse-camera perturbations, 200 gallery
scans with glare). Gallery: all 884 real scans. For each model: the embedding alone (Recall@1/@5,
ms per crop) and the fused pipeline (embedding + pHash shortlist → ORB verification → fused score,
the DB calibrated on simulated views only). Writes benchmarks/results/pretrained_realdata.{json,md}.

    .venv/bin/python benchmarks/realdata_pretrained.py \
        --model frozen=runs/frozen-opennsfw --model fine-tuned=runs/real-opennsfw \
        [--model scratch=runs/real-teacher] [--build-frozen]
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import time
from pathlib import Path

import torch

from cardid.catalog.folder import catalog_from_folder
from cardid.decision.decide import score
from cardid.decision.match import Matcher
from cardid.embed import load_embedder
from cardid.eval.hardsets import build_hard_sets
from cardid.eval.queries import load_queries
from cardid.eval.real import build_real_db
from cardid.images import load_rgb
from cardid.io import write_bytes_atomic, write_json_atomic
from cardid.search import topk_cosine

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT / ".." / "shared" / "realdata"


def evaluate_model(path: str, sets: dict, work: Path, calib_cards: int) -> dict:
    _, emb, db, _, _, _ = build_real_db(REAL, load_embedder(path, device="cpu"), work, calib_cards)
    matcher = Matcher(db, emb)
    res = {"model": str(path), "identity": emb.identity, "dim": emb.dim}
    for name, qs in sets.items():
        imgs = [load_rgb(p) for p in qs.paths]
        t = time.perf_counter()
        e = emb.embed(imgs)
        ms_embed = (time.perf_counter() - t) / len(imgs) * 1e3
        _, rows = topk_cosine(e, db.embeddings, 5)
        truth = qs.card_ids
        top = [[db.ids[int(r)] for r in row] for row in rows]
        fused_ranks, t = [], time.perf_counter()
        for im, v, cid in zip(imgs, e, truth, strict=True):
            q = matcher.query(im, v)
            order = [c.card_id for c in score(matcher.candidates(q), matcher.calibration)]
            fused_ranks.append(order.index(cid) if cid in order else None)
        ms_fused = (time.perf_counter() - t) / len(imgs) * 1e3 + ms_embed
        n = len(truth)
        res[name] = {
            "queries": n,
            "embedding": {
                "recall@1": sum(t[0] == c for t, c in zip(top, truth, strict=True)) / n,
                "recall@5": sum(c in t for t, c in zip(top, truth, strict=True)) / n,
                "ms": round(ms_embed, 1),
            },
            "fused": {
                "recall@1": sum(r == 0 for r in fused_ranks) / n,
                "recall@5": sum(r is not None and r < 5 for r in fused_ranks) / n,
                "ms": round(ms_fused, 1),
            },
        }
        logging.info(
            "%s %s: embedding R@1 %.3f, fused R@1 %.3f",
            path,
            name,
            res[name]["embedding"]["recall@1"],
            res[name]["fused"]["recall@1"],
        )
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", action="append", default=[], help="NAME=MODEL_DIR_OR_ONNX (repeatable)")
    ap.add_argument("--build-frozen", action="store_true", help="(Re)build runs/frozen-opennsfw first")
    ap.add_argument("--work", default=str(ROOT / "runs" / "bench-pretrained"))
    ap.add_argument("--calib-cards", type=int, default=300)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(max(1, torch.get_num_threads()))
    work = Path(args.work)
    cat = catalog_from_folder(
        REAL / "gallery", ROOT / "runs" / "real-catalog", metadata_csv=REAL / "gallery.csv"
    )
    models = dict(m.split("=", 1) for m in args.model)
    if args.build_frozen or "frozen" not in models:
        from cardid.train.frozen import build_frozen

        build_frozen(cat, ROOT / "runs" / "frozen-opennsfw", backbone="opennsfw")
        models.setdefault("frozen", str(ROOT / "runs" / "frozen-opennsfw"))
    dev = load_queries(REAL / "queries-dev.csv")
    hard = build_hard_sets(list(zip(dev.paths, dev.card_ids, strict=True)), cat, work / "hardsets", seed=0)
    sets = {
        "dev_crops": dev,
        "hard_crops": load_queries(hard["crops"]),
        "hard_scans": load_queries(hard["scans"]),
    }
    results = {}
    for name, path in models.items():
        results[name] = evaluate_model(path, sets, work / name, args.calib_cards)
    out = {
        "what": "real crops → 884 real gallery scans; hard sets seeded (seed 0) from queries-dev and the gallery",
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}",
        "sets": {k: len(v) for k, v in sets.items()},
        "models": results,
    }
    write_json_atomic(ROOT / "benchmarks" / "results" / "pretrained_realdata.json", out)
    lines = [
        "# Pretrained features on real crops\n",
        f"{out['what']}; {out['machine']}. Sets: "
        + ", ".join(f"{k} {v}" for k, v in out["sets"].items())
        + ". Fused = embedding top-16 ∪ pHash top-4 → ORB + USAC → fused score (calibrated on simulated views).\n",
        "| model | dim | dev crops emb / fused | hard crops emb / fused | hard scans emb / fused | ms/crop emb / fused |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        cells = [
            f"{r[s]['embedding']['recall@1']:.3f} / {r[s]['fused']['recall@1']:.3f}"
            for s in ("dev_crops", "hard_crops", "hard_scans")
        ]
        ms = f"{r['hard_crops']['embedding']['ms']:.0f} / {r['hard_crops']['fused']['ms']:.0f}"
        lines.append(f"| {name} | {r['dim']} | " + " | ".join(cells) + f" | {ms} |")
    write_bytes_atomic(
        ROOT / "benchmarks" / "results" / "pretrained_realdata.md", ("\n".join(lines) + "\n").encode()
    )
    print("\n".join(lines))
    print(json.dumps({k: {s: v[s] for s in sets} for k, v in results.items()}, indent=1))


if __name__ == "__main__":
    main()
