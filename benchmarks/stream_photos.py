"""Many photos through `cardid recognize` as a stream: photos/s and peak memory.

Simulates ``--n`` photos (one card each, on a table, 400×400 JPEG, from the catalog's scans) into a
scratch folder, then runs ``cardid recognize FOLDER --json OUT`` in a child process and reports its
wall time, photos/s and peak RSS (the child's ``ru_maxrss``). Writes
benchmarks/results/stream_photos.{json,md}.

    .venv/bin/python benchmarks/stream_photos.py --model MODEL --db DB --catalog CAT \
        [--detector best.pt] [--n 10000 --workers 2]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from common import machine, write_results

from cardid.catalog.records import Catalog
from cardid.images import save_rgb
from cardid.progress import progress
from cardid.synth.photo import prepare_scan, render_scene
from cardid.synth.settings import photo_preset

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", required=True)
    ap.add_argument("--db", required=True)
    ap.add_argument("--catalog", required=True)
    ap.add_argument("--detector", default="classical")
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--work", default=str(ROOT / "runs" / "stream-photos"))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "stream_photos"))
    args = ap.parse_args()

    cat = Catalog.load(args.catalog)
    work = Path(args.work)
    photos = work / "photos"
    photos.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    cfg = photo_preset("light")
    have = len(list(photos.glob("*.jpg")))
    t = time.perf_counter()
    with progress(args.n - min(have, args.n), "simulating photos") as advance:
        for i in range(have, args.n):
            cid = cat.ids[i % len(cat)]
            scene = render_scene([prepare_scan(cat.load_image(cid), cfg)], rng, (400, 400), "table", cfg)
            save_rgb(photos / f"{i:05d}_{cid}.jpg", scene.image, quality=88)
            advance(1)
    sim_s = time.perf_counter() - t

    out = work / "results.jsonl"
    cmd = [
        sys.executable,
        "-m",
        "cardid.cli",
        "recognize",
        str(photos),
        "--model",
        args.model,
        "--db",
        args.db,
    ]
    cmd += ["--detector", args.detector, "--json", str(out), "--workers", str(args.workers)]
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    lines = out.read_text().splitlines() if out.is_file() else []
    recs = [json.loads(x) for x in lines]
    named = sum(
        1
        for r in recs
        if any(
            c.get("card") and r["image"].endswith(f"_{c['card']['card_id']}.jpg") for c in r.get("cards", [])
        )
    )
    result = {
        "photos": args.n,
        "records": len(recs),
        "rc": proc.returncode,
        "errors": sum("error" in r for r in recs),
        "named_correctly": named,
        "seconds": round(wall, 1),
        "photos_per_s": round(len(recs) / wall, 2),
        "peak_rss_mb": round(peak_mb, 1),
        "simulate_seconds": round(sim_s, 1),
        "workers": args.workers,
        "model": args.model,
        "detector": args.detector,
        "machine": machine(),
    }
    print(json.dumps(result, indent=1))
    if proc.returncode:
        print(proc.stderr[-2000:], file=sys.stderr)
    write_results(
        args.out,
        result,
        "# Many photos as a stream\n\n"
        f"`cardid recognize FOLDER --json OUT --workers {args.workers}` over {args.n:,} simulated photos "
        f"(400×400, one card on a table) — {result['machine']}, model `{args.model}`, finder `{args.detector}`:\n\n"
        "| photos | records | errors | named correctly | seconds | photos/s | peak RSS (MB) |\n|---|---|---|---|---|---|---|\n"
        f"| {args.n:,} | {len(recs):,} | {result['errors']} | {named:,} | {result['seconds']} | "
        f"{result['photos_per_s']} | {result['peak_rss_mb']} |\n",
    )


if __name__ == "__main__":
    main()
