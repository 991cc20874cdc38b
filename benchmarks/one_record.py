"""One physical card, one record: how many records the recognizer gives per card in a photo.

- **Single-card photos** (photos-dev, the dev crops): the share of photos with exactly one card
  record (backs counted apart), photos with extra records, the same card named twice, backs found,
  and the exact printing named.
- **Multi-card photos**: the detection set's real photos of its valid and test splits (axis-aligned
  card boxes; the finder's gate is fitted on its train split, ``fit_gate.py``) and simulated
  binder pages of 9 and table spreads: card recall (a labelled card with a record whose quad
  covers it, IoU ≥ 0.5) and records per labelled card.
- **Rotation**: the dev crops and a photos-dev sample turned 90° and 180°, exact printing named
  against upright.

    .venv/bin/python benchmarks/one_record.py --bundle runs/cpu-real/bundle/cpu-real \\
        --out benchmarks/results/one_record.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT / ".." / "shared" / "realdata"


def _records(rec, image) -> tuple[list, float]:
    t = time.perf_counter()
    r = rec.recognize_photo(image)
    return list(r.cards), (time.perf_counter() - t) * 1e3


def single_card(rec, rows, progress=None, turn: int = 0) -> dict:
    """Figures over photos that each show one card (``turn``: quarter turns applied first)."""
    from cardid.decision.decide import MATCH
    from cardid.images import load_rgb

    n = one = extra = twice = backs = exact = 0
    ms = []
    for r in rows:
        img = np.ascontiguousarray(np.rot90(load_rgb(r["path"]), turn))
        cards, t = _records(rec, img)
        ms.append(t)
        back = [c for c in cards if c.decision.kind == "back"]
        faces = [c for c in cards if c.decision.kind != "back"]
        named = [c.decision.card_id for c in faces if c.decision.kind == MATCH]
        n += 1
        one += len(faces) == 1
        extra += len(faces) > 1
        twice += len(named) != len(set(named))
        backs += bool(back)
        exact += r["card_id"] in named and len(set(named)) == 1
        if progress:
            progress(1)
    return {
        "photos": n,
        "one_record": one / n,
        "extra_records": extra / n,
        "same_card_twice": twice,
        "with_a_back": backs,
        "exact_printing": exact / n,
        "ms_p50": float(np.median(ms)),
    }


def _iou(a, b) -> float:
    from cardid.detect.geometry import box_iou

    return box_iou(a, b)


def multi_card(rec, photos, progress=None) -> dict:
    """``photos``: (image, labelled boxes x0 y0 x1 y1). Card recall and records per card."""
    from cardid.detect.geometry import corners_box

    cards = found = records = 0
    for img, boxes in photos:
        out, _ = _records(rec, img)
        got = [corners_box(c.corners) for c in out if c.corners is not None and c.fallback is None]
        cards += len(boxes)
        records += len([c for c in out if c.decision.kind != "back"])
        found += sum(any(_iou(b, g) >= 0.5 for g in got) for b in boxes)
        if progress:
            progress(1)
    return {
        "photos": len(photos),
        "cards": cards,
        "recall": found / max(cards, 1),
        "records_per_card": records / max(cards, 1),
    }


def detection_photos(root: Path, limit: int | None) -> list:
    from cardid.detect.evaluate import labelled_images, yolo_boxes
    from cardid.images import load_rgb

    out = []  # its valid and test splits: the gate is fitted on its train split (fit_gate.py)
    for img_path, label in labelled_images([root / "valid", root / "test"])[:limit]:
        img = load_rgb(img_path)
        boxes = yolo_boxes(label, img.shape[1], img.shape[0])
        if len(boxes) >= 2:  # the multi-card photos
            out.append((img, boxes))
    return out


def synthetic_scenes(gallery: Path, layout: str, n: int, cards: int, seed: int = 0) -> list:
    from cardid.detect.geometry import corners_box
    from cardid.images import IMAGE_EXTENSIONS, load_rgb
    from cardid.synth.photo import prepare_scan, render_scene
    from cardid.synth.settings import photo_preset

    files = sorted(p for p in gallery.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    rng = np.random.default_rng(seed)
    cfg = photo_preset("default")
    out = []
    for _ in range(n):
        picked = rng.choice(len(files), cards, replace=False)
        scans = [prepare_scan(load_rgb(files[i]), cfg) for i in picked]
        scene = render_scene(scans, rng, (960, 960), layout=layout, cfg=cfg)
        boxes = [corners_box(c.corners) for c in scene.cards if c.visible > 0.9]
        out.append((scene.image, boxes))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", type=Path)
    ap.add_argument("--model")
    ap.add_argument("--db")
    ap.add_argument("--detector", default="classical")
    ap.add_argument("--realdata", type=Path, default=REAL)
    ap.add_argument("--limit", type=int, default=None, help="photos-dev: a fixed sample of this many")
    ap.add_argument("--rotated", type=int, default=200, help="photos-dev photos turned 90° and 180°")
    ap.add_argument("--scenes", type=int, default=10, help="synthetic binder pages and table spreads, each")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "one_record.json")
    args = ap.parse_args()

    from cardid.data.photoset import load_photo_set
    from cardid.progress import progress
    from cardid.recognize import Recognizer

    if args.bundle:
        from cardid.bundle import load_bundle

        rec = load_bundle(args.bundle).recognizer()
    else:
        rec = Recognizer.open(args.model, args.db, args.detector)
    real = args.realdata
    photos = load_photo_set(real / "photos-dev.csv").sample(args.limit, seed=0).rows()
    # the photos a DB's card back was cut from are not measured
    learnt = {
        Path(f).resolve() for f in (getattr(rec.matcher.db, "meta", {}).get("backs") or {}).get("files") or []
    }
    photos = [r for r in photos if Path(r["path"]).resolve() not in learnt]
    crops = load_photo_set(real / "queries-dev.csv").rows()
    res: dict = {"backs_learnt_from": sorted(Path(f).name for f in learnt)}
    with progress(len(photos), "photos-dev") as adv:
        res["photos-dev"] = single_card(rec, photos, adv)
    res["dev-crops"] = single_card(rec, crops)
    sample = photos[: args.rotated]
    for turn, name in ((1, "90"), (2, "180")):
        res[f"photos-dev-{name}"] = {
            "upright": single_card(rec, sample),
            "turned": single_card(rec, sample, turn=turn),
        }
        res[f"dev-crops-{name}"] = single_card(rec, crops, turn=turn)
    det = detection_photos(real / "detection" / "pokemon-card-outliner-1", None)
    with progress(len(det), "detection set") as adv:
        res["detection-multi"] = multi_card(rec, det, adv)
    for layout, k in (("binder", 9), ("table", 4)):
        res[f"synthetic-{layout}-{k}"] = multi_card(
            rec, synthetic_scenes(real / "gallery", layout, args.scenes, k)
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2) + "\n")
    json.dump(res, sys.stdout, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
