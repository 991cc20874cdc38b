"""Detector latency per 640 px photo (PyTorch .pt and ONNX, plus the classical finder) and
whole-photo recognition latency with 1 and 9 cards.

    python benchmarks/detect_latency.py --detector runs/detector/best.pt \
        --model runs/models/students/small-cnn/model.onnx --db runs/real-db-onnx \
        --catalog runs/real-catalog --json benchmarks/results/detect_latency_cpu.json
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from common import latency, report


def lat(fn, n: int) -> dict:
    return latency(fn, n, warmup=1)


def main() -> None:
    from cardid.catalog.records import Catalog
    from cardid.detect.classical import ClassicalFinder
    from cardid.recognize import Recognizer, make_detector
    from cardid.synth.photo import prepare_scan, render_scene
    from cardid.synth.settings import photo_preset

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--detector", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--db", required=True)
    ap.add_argument("--catalog", required=True)
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--json")
    a = ap.parse_args()
    cat = Catalog.load(a.catalog)
    rng = np.random.default_rng(0)
    cfg = photo_preset("default")
    photos = {}
    for n, layout in ((1, "scatter"), (9, "binder")):
        ids = [str(c) for c in rng.choice(cat.ids, n, replace=False)]
        scans = [prepare_scan(cat.load_image(c), cfg.model_copy(update={"crop_width": 360})) for c in ids]
        photos[n] = render_scene(scans, rng, (640, 640), layout, cfg).image
    res: dict = {"photo": "640×640"}
    dets = {"pt": make_detector(a.detector)}
    onnx = Path(a.detector).with_suffix(".onnx")
    if onnx.is_file():
        dets["onnx"] = make_detector(onnx)
    dets["classical"] = ClassicalFinder()
    for name, d in dets.items():
        res[f"detect_{name}"] = lat(lambda d=d: d.detect(photos[9]), a.n)
    for name, d in (("pt", dets["pt"]), ("classical", dets["classical"])):
        rec = Recognizer.open(a.model, a.db, d)
        for n, img in photos.items():
            out = rec.recognize_photo(img)
            res[f"recognize_{n}_cards_{name}"] = {
                **lat(lambda rec=rec, img=img: rec.recognize_photo(img), max(3, a.n // 4)),
                "cards_found": len(out.cards),
            }
    res["simulated_photos_960px"] = accuracy(cat, Recognizer.open(a.model, a.db, dets["pt"]))
    report(res, a.json)


def accuracy(cat, rec, rounds: int = 4) -> dict:
    """Simulated photos of real gallery cards (1 loose card, a 9-card binder page, 4 loose cards)
    × ``rounds``: cards found, named correctly, named wrongly — with and without corner refinement."""
    from cardid.eval.simulated import overlapping_card
    from cardid.synth.photo import prepare_scan, render_scene
    from cardid.synth.settings import photo_preset

    cfg = photo_preset("default")
    out = {}
    for refine in (False, True):
        rec.refine = refine
        rng = np.random.default_rng(0)
        cards = found = named = wrong = 0
        for _ in range(rounds):
            for n, layout in ((1, "scatter"), (9, "binder"), (4, "scatter")):
                ids = [str(c) for c in rng.choice(cat.ids, n, replace=False)]
                scans = [
                    prepare_scan(cat.load_image(c), cfg.model_copy(update={"crop_width": 512})) for c in ids
                ]
                scene = render_scene(scans, rng, (960, 960), layout, cfg)
                cards += n
                for c in rec.recognize_photo(scene.image).cards:
                    truth = overlapping_card(np.array(c.corners), scene, ids)
                    if truth is not None:
                        found += 1
                        named += c.card_id == truth
                        wrong += bool(c["card"]) and c["card"]["card_id"] != truth
        out["refined" if refine else "oriented_box"] = {
            "cards": cards,
            "found": found,
            "named": named,
            "wrong": wrong,
        }
    return out


if __name__ == "__main__":
    main()
