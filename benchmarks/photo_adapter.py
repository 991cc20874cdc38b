"""Learning from real photos: a linear query adapter (``cardid.embed.adapter``) fitted on real photo ↔
scan pairs, with and without, on the same card-disjoint folds as `cardid eval photos --folds 5`.

Reads a `cardid eval photos` report (its per-photo corners; no finder is rerun): each photo's
biggest found card is rectified and embedded with the report's model. For each fold, the adapter
is fitted on the other folds' photos (λ by inner card-disjoint folds of those photos) and measured
on the fold's own, against the DB's gallery embeddings: Recall@1/@5 of the exact card, and of the
card name (any printing). Two checks that it did not just learn "prefer base1" (photos-dev shows
only base1 printings): the 16 dev crops (Paldea Evolved), and simulated views of every gallery card
that is not base1, each with and without an adapter fitted on all of photos-dev.

    .venv/bin/python benchmarks/photo_adapter.py --report runs/eval-model-lite0 --model runs/frozen-lite0

Results: benchmarks/results/photo_adapter.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, write_results

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT / ".." / "shared" / "realdata"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--report", type=Path, required=True, help="a `cardid eval photos` output folder")
    ap.add_argument("--model", required=True)
    ap.add_argument("--realdata", type=Path, default=REAL)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--fold-seed", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "photo_adapter"))
    args = ap.parse_args()

    from cardid.catalog.records import Catalog, name_key
    from cardid.data.photoset import load_photo_set
    from cardid.db.store import CardDB
    from cardid.embed import load_embedder
    from cardid.embed.adapter import recall_at
    from cardid.fit.adapter import fit_db_adapter, photo_pairs
    from cardid.fit.calibrate import synthetic_queries
    from cardid.fit.folds import card_folds, require_disjoint
    from cardid.fit.records import read_records
    from cardid.images import load_rgb

    report = json.loads((args.report / "report.json").read_text())
    emb = load_embedder(args.model, "cpu")
    db = CardDB.load(args.report / "db", emb)
    catalog = Catalog.load(args.report / "catalog")
    gallery = np.asarray(db.embeddings, np.float32)
    names = np.array([name_key(catalog[c]) for c in db.ids])

    def name_of(cid: str) -> str | None:
        return name_key(catalog[cid]) if cid in catalog else None

    photos = load_photo_set(args.realdata / "photos-dev.csv")
    split = card_folds(photos, args.folds, args.fold_seed, group=name_of)

    per = read_records(report["sets"]["photos-dev"]["per_photo"])
    q, truth, used = photo_pairs(db, emb, per)  # each photo's widest found card, rectified and embedded
    cards = [per[i].card_id for i in used]
    truth, cards = np.asarray(truth), np.asarray(cards)
    fold = np.array([split.fold_of[c] for c in cards])

    def figures(queries, rows) -> dict:
        sims = queries @ gallery.T
        top = np.argsort(-sims, axis=1, kind="stable")[:, :5]
        return {
            "recall@1": recall_at(queries, gallery, rows, 1),
            "recall@5": recall_at(queries, gallery, rows, 5),
            "name@1": float(np.mean(names[top[:, 0]] == names[rows])),
        }

    per_fold = []
    for i in range(args.folds):
        fit, held = fold != i, fold == i
        require_disjoint(set(cards[fit]), set(cards[held]), f"fold {i}")
        # λ on inner folds that are the other folds themselves (card-disjoint by construction)
        a, _ = fit_db_adapter(db, q[fit], truth[fit], fold[fit])
        per_fold.append(
            {
                "fold": i,
                "photos": int(held.sum()),
                "lambda": a.lam,
                "without": figures(q[held], truth[held]),
                "with": figures(a(q[held]), truth[held]),
            }
        )
    keys = ("recall@1", "recall@5", "name@1")
    summary = {
        side: {
            k: {
                "mean": float(np.mean([r[side][k] for r in per_fold])),
                "sd": float(np.std([r[side][k] for r in per_fold], ddof=1)),
            }
            for k in keys
        }
        for side in ("without", "with")
    }

    # does an adapter fitted on all of photos-dev (base1 only) hurt other printings?
    a_all, _ = fit_db_adapter(db, q, truth, fold)
    lam_all = a_all.lam
    checks = {}
    dev = load_photo_set(args.realdata / "queries-dev.csv")
    dq = np.asarray(emb.embed([load_rgb(r.path) for r in dev.photos]), np.float32)
    drows = [db.row_of[r.card_id] for r in dev.photos]
    checks["dev_crops"] = {
        "photos": len(drows),
        "without": figures(dq, drows),
        "with": figures(a_all(dq), drows),
    }
    others = [c for c in db.ids if not c.startswith("base1-")]
    images, labels = synthetic_queries(catalog, others, seed=11, crop_width=224)
    sq = np.asarray(emb.embed(images), np.float32)
    srows = [db.row_of[c] for c in labels]
    checks["simulated_not_base1"] = {
        "views": len(srows),
        "without": figures(sq, srows),
        "with": figures(a_all(sq), srows),
    }
    # the sharpest test of a learned "prefer base1": other printings of base1's own cards
    base1_names = {names[db.row_of[c]] for c in db.ids if c.startswith("base1-")}
    twins = [i for i, c in enumerate(labels) if names[db.row_of[c]] in base1_names]
    checks["simulated_reprints_of_base1"] = {
        "views": len(twins),
        "without": figures(sq[twins], [srows[i] for i in twins]),
        "with": figures(a_all(sq[twins]), [srows[i] for i in twins]),
    }
    result = {
        "machine": machine(),
        "model": args.model,
        "model_identity": emb.identity,
        "report": str(args.report),
        "photos": len(cards),
        "folds": args.folds,
        "fold_seed": args.fold_seed,
        "per_fold": per_fold,
        "summary": summary,
        "lambda_all": lam_all,
        "checks": checks,
    }
    md = [
        f"# Query adapter from real photo ↔ scan pairs ({emb.identity}, {len(cards)} photos, "
        f"{args.folds} card-disjoint folds)",
        "",
        "| | R@1 exact card | R@5 | card name @1 |",
        "|---|---|---|---|",
    ]
    for side in ("without", "with"):
        s = summary[side]
        md.append(
            f"| {side} adapter (held-out folds, mean ± sd) | "
            + " | ".join(f"{s[k]['mean']:.3f} ± {s[k]['sd']:.3f}" for k in keys)
            + " |"
        )
    for name, c in checks.items():
        for side in ("without", "with"):
            md.append(
                f"| {name}, {side} (fitted on all photos-dev) | "
                + " | ".join(f"{c[side][k]:.3f}" for k in keys)
                + " |"
            )
    md.append("")
    md.append(
        f"λ per fold: {[r['lambda'] for r in per_fold]} (inner card-disjoint folds); all photos: {lam_all}"
    )
    write_results(args.out, result, "\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
