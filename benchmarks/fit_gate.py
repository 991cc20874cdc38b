"""Fit the finder's gate (the plausibility below which a box is not a card) for each finder.

On the detection set's real photos of its ``train`` split (its ``valid`` and ``test`` splits are
where ``one_record.py`` measures multi-card recall) and on simulated scenes of the gallery's scans
(loose, binder pages, table spreads, slabs, card backs and other things under the cards). Prints
and writes each finder's fit; the threshold cardid ships (``MIN_PLAUSIBILITY``) is the smallest of
them.

    .venv/bin/python benchmarks/fit_gate.py --detector classical \\
        --detector runs/cpu-real/detector/best.onnx --out benchmarks/results/gate.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT / ".." / "shared" / "realdata"


def real_photos(root: Path, splits=("train",)):
    from cardid.detect.evaluate import labelled_images, yolo_boxes
    from cardid.images import load_rgb

    for img_path, label in labelled_images([root / s for s in splits if (root / s).is_dir()]):
        img = load_rgb(img_path)
        yield img, yolo_boxes(label, img.shape[1], img.shape[0])


def simulated_photos(gallery: Path, n: int, seed: int = 1):
    """Scenes as the detection data renders them (another seed than any dataset written)."""
    from cardid.detect.geometry import corners_box
    from cardid.images import IMAGE_EXTENSIONS, load_rgb
    from cardid.synth.objects import DISTRACTORS, distractor
    from cardid.synth.photo import prepare_scan, render_scene
    from cardid.synth.settings import photo_preset

    files = sorted(p for p in gallery.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    rng = np.random.default_rng(seed)
    cfg = photo_preset("default")
    for i in range(n):
        layout = ("scatter", "binder", "table")[i % 3]
        k = int(rng.integers(9, 13)) if layout == "binder" else int(rng.integers(1, 5))
        scans = [prepare_scan(load_rgb(files[j]), cfg) for j in rng.choice(len(files), k, replace=False)]
        things = [
            distractor(rng, DISTRACTORS[int(rng.integers(len(DISTRACTORS)))], 300)
            for _ in range(rng.integers(0, 3))
        ]
        holders = ["slab" if k <= 3 and rng.random() < 0.2 else None for _ in scans]
        scene = render_scene(
            scans, rng, (800, 800), layout=layout, cfg=cfg, distractors=things, holders=holders
        )
        yield scene.image, [corners_box(c.corners) for c in scene.cards if c.visible > 0.5]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--detector", action="append", default=None)
    ap.add_argument("--realdata", type=Path, default=REAL)
    ap.add_argument("--scenes", type=int, default=150)
    ap.add_argument("--keep", type=float, default=0.98)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "gate.json")
    args = ap.parse_args()

    from cardid.fit.gate import fit_gate, label_boxes
    from cardid.progress import progress
    from cardid.recognize import make_detector

    det_root = args.realdata / "detection" / "pokemon-card-outliner-1"
    out = {}
    for spec in args.detector or ["classical"]:
        det = make_detector(spec)
        real = list(real_photos(det_root))
        sim = list(simulated_photos(args.realdata / "gallery", args.scenes))
        with progress(len(real) + len(sim), f"finder {Path(spec).name}") as adv:
            samples = label_boxes(det, real, "detection set (train)", progress=adv)
            samples += label_boxes(det, sim, "simulated scenes", progress=adv)
        out[str(spec)] = fit_gate(samples, args.keep)
        print(spec, json.dumps(out[str(spec)], indent=2), file=sys.stderr)
    out["shipped"] = min(v["threshold"] for v in out.values())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps({k: (v if k == "shipped" else v["threshold"]) for k, v in out.items()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
