"""Real-data student: distil configs/distill-realdata-cpu.yaml from the real-data teacher, then
evaluate teacher and student on ../shared/realdata/queries-dev.csv beside the pHash baseline.
Needs runs/real-teacher (benchmarks/realdata_teacher.py). Writes benchmarks/results/distill_realdata.*.

    .venv/bin/python benchmarks/realdata_distill.py
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from cardid.catalog.records import Catalog
from cardid.config import load_config
from cardid.embed import load_embedder
from cardid.eval.evaluate import evaluate
from cardid.eval.queries import load_queries
from cardid.io import write_bytes_atomic, write_json_atomic
from cardid.train.configs import DistillConfig
from cardid.train.distill import distill

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT / ".." / "shared" / "realdata"


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    cat = Catalog.load(ROOT / "runs" / "real-catalog")
    cfg = load_config(
        DistillConfig,
        ROOT / "configs" / "distill-realdata-cpu.yaml",
        teacher=str(ROOT / "runs" / "real-teacher"),
        out_dir=str(ROOT / "runs" / "real-distill"),
        data={"train": str(cat.root)},
    )
    t = time.perf_counter()
    res = distill(cfg)
    minutes = (time.perf_counter() - t) / 60
    queries = load_queries(REAL / "queries-dev.csv")
    rows = {}
    for name, path in [("teacher", cfg.teacher)] + [
        (s, Path(cfg.out_dir) / "students" / s) for s in cfg.students
    ]:
        rows[name] = evaluate(load_embedder(path, device="cpu"), cat, queries, baseline=name == "teacher")
    phash = rows["teacher"]["phash"]
    result = {
        "config": "configs/distill-realdata-cpu.yaml",
        "train_minutes": round(minutes, 1),
        "simulated_val": res["best"],
        "real_queries": {k: v["model"] for k, v in rows.items()},
        "phash": phash,
    }
    write_json_atomic(ROOT / "benchmarks" / "results" / "distill_realdata.json", result)
    lines = [
        "# Student distilled on real data (CPU run)",
        "",
        f"Config `{result['config']}`, {result['train_minutes']} min. Queries: 16 real photos "
        "(`queries-dev.csv`), gallery: the 884 real scans embedded by each model itself.",
        "",
        "| model | Recall@1 | Recall@5 |",
        "|---|---|---|",
    ]
    for name, r in rows.items():
        lines.append(f"| {name} | {r['model']['recall@1']:.3f} | {r['model']['recall@5']:.3f} |")
    lines.append(f"| pHash baseline | {phash['recall@1']:.3f} | {phash['recall@5']:.3f} |")
    write_bytes_atomic(
        ROOT / "benchmarks" / "results" / "distill_realdata.md", ("\n".join(lines) + "\n").encode()
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
