"""Simulated vs real photo crops: simple image statistics side by side.

For every labelled real crop in ../shared/realdata/queries-dev.csv, renders simulated crops of
the same gallery card and compares sharpness (variance of the Laplacian at 224 px width),
brightness, contrast, colourfulness (Hasler–Süsstrunk) and the mean absolute difference to the
clean scan. Not a test: a way to see whether the simulation is in the range of real photos.

    .venv/bin/python benchmarks/realism_stats.py [--views 16] [--preset default]
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import cv2
import numpy as np

from cardid.images import load_rgb
from cardid.synth.photo import prepare_scan, render_crop
from cardid.synth.settings import PRESETS

REAL = Path(__file__).resolve().parents[1] / ".." / "shared" / "realdata"


def stats(img: np.ndarray, scan: np.ndarray) -> np.ndarray:
    img = cv2.resize(img, (224, 313), interpolation=cv2.INTER_AREA)
    ref = cv2.resize(scan, (224, 313), interpolation=cv2.INTER_AREA)
    g = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    r, gg, b = (img[..., i].astype(np.float32) for i in range(3))
    rg, yb = r - gg, 0.5 * (r + gg) - b
    colourful = np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean())
    return np.array(
        [
            cv2.Laplacian(g, cv2.CV_32F).var(),
            g.mean(),
            g.std(),
            colourful,
            np.abs(img.astype(np.float32) - ref).mean(),
        ]
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--views", type=int, default=16)
    ap.add_argument("--preset", default="default", choices=list(PRESETS))
    args = ap.parse_args()
    if not (REAL / "queries-dev.csv").is_file():
        raise SystemExit(f"needs {REAL / 'queries-dev.csv'}")
    rows = list(csv.DictReader((REAL / "queries-dev.csv").open()))
    real, sim = {}, []
    for row in rows:
        scan = load_rgb(REAL / "gallery" / f"{row['card_id']}.jpg")
        real.setdefault(row["kind"], []).append(stats(load_rgb(REAL / row["file"]), scan))
        prepared = prepare_scan(scan, PRESETS[args.preset])
        for v in range(args.views):
            rng = np.random.default_rng([7, len(sim), v])
            sim.append(stats(render_crop(prepared, rng, PRESETS[args.preset]), scan))
    names = ["sharpness", "brightness", "contrast", "colourful", "|diff| to scan"]
    print(f"{'':<22}" + "".join(f"{n:>16}" for n in names))
    groups = {
        **{f"real {k} (n={len(v)})": v for k, v in real.items()},
        f"sim {args.preset} (n={len(sim)})": sim,
    }
    for name, vals in groups.items():
        a = np.array(vals)
        print(
            f"{name:<22}" + "".join(f"{m:>9.1f} ±{s:<6.1f}" for m, s in zip(a.mean(0), a.std(0), strict=True))
        )


if __name__ == "__main__":
    main()
