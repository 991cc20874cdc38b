"""Camera-simulation throughput: rectified 224-px crops per second per core.

Goal (issue: foundation): >= 150 crops/s/core. Runs single-threaded (one core) on synthetic scans,
and on the real gallery when ../shared/realdata is present, and reports each preset.

    .venv/bin/python benchmarks/bench_photo_sim.py [--n 400]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import cv2
import numpy as np

from cardid.catalog import Catalog
from cardid.catalog.folder import catalog_from_folder
from cardid.synth.cards import synth_cards
from cardid.synth.settings import PRESETS
from cardid.synth.views import ViewRenderer

REAL = Path(__file__).resolve().parents[1] / ".." / "shared" / "realdata" / "gallery"


def bench(catalog: Catalog, preset: str, n: int) -> float:
    renderer = ViewRenderer(catalog, PRESETS[preset], seed=0)
    ids = catalog.ids[:32]
    for cid in ids:  # load + shrink scans once, as the datasets do
        renderer.scan(cid)
    t = time.perf_counter()
    for i in range(n):
        renderer.view(ids[i % len(ids)], "train", i)
    return n / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=400)
    args = ap.parse_args()
    cv2.setNumThreads(1)
    with tempfile.TemporaryDirectory() as tmp:
        catalogs = {"synthetic 512px": synth_cards(Path(tmp) / "c", n=32, height=512)}
        if REAL.is_dir():
            catalogs["real gallery"] = catalog_from_folder(REAL, Path(tmp) / "real")
        print(
            f"{'catalog':<18}{'preset':<10}{'crops/s/core':>14}   (crop {PRESETS['default'].crop_height}x"
            f"{PRESETS['default'].crop_width}, 1 thread, cv2 {cv2.__version__}, numpy {np.__version__})"
        )
        for name, cat in catalogs.items():
            for preset in PRESETS:
                print(f"{name:<18}{preset:<10}{bench(cat, preset, args.n):>14.1f}")


if __name__ == "__main__":
    main()
