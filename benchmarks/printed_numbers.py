"""Reading the collector number: real crops, real listing photos, and simulated same-art reprints.

1. The 10 real phone crops of ``queries-dev`` (Paldea Evolved, numbers legible): read rate (a
   number came out) and exact-number accuracy, ms per crop.
2. ``photos-dev`` (~225×300 listing photos of base1 cards): each photo's card found (``--detector``)
   and rectified, its number corner read at whatever resolution it has: how often it is legible
   at all, and right.
3. Simulated same-art reprints: a synthetic catalog whose reprints share art and name but not
   their number (``reprint_fraction``), a DB built with ``--model`` and calibrated on simulated
   views, then simulated photos (``--crop-width`` px wide) of every reprinted card, decided with the
   number reading off and on: ambiguous sets resolved (by the strip, by the number), wrong names,
   and the extra time OCR took per card it ran on.

Writes benchmarks/results/printed_numbers.{json,md}.

    .venv/bin/python benchmarks/printed_numbers.py --model runs/export-lite0/students/hailo-lite0/model.onnx \
        --detector runs/detector-real/best.pt [--photos-limit 400]
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np

from cardid.catalog.records import Catalog
from cardid.db.calibrate import calibrate_on_views, synthetic_queries
from cardid.db.decide import AMBIGUOUS, MATCH, decide
from cardid.db.match import MatchConfig, Matcher
from cardid.db.store import CardDB
from cardid.detect.rectify import rectify, refine_corners
from cardid.embed import load_embedder
from cardid.eval.photos import load_photo_rows
from cardid.io import load_rgb, read_csv_rows, write_bytes_atomic, write_json_atomic
from cardid.printing.number import parse_number
from cardid.printing.ocr import layout_of, read_printed, tesseract_available
from cardid.progress import progress
from cardid.recognize import make_detector
from cardid.synth.cards import synth_cards

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT / ".." / "shared" / "realdata"


def pct(xs, q) -> float | None:
    return round(float(np.percentile(xs, q)), 1) if len(xs) else None


def read_real_crops(catalog: Catalog | None) -> dict:
    rows = [r for r in read_csv_rows(REAL / "queries-dev.csv", ("file", "card_id"), "queries")]
    rows = [r for r in rows if r.get("kind") == "photo_crop"]
    per, ms = [], []
    for r in rows:
        im = load_rgb(REAL / r["file"])
        want = parse_number(r["card_id"].split("-", 1)[1]).key
        series = catalog[r["card_id"]].series if catalog and r["card_id"] in catalog else None
        got = read_printed(im, layout_of(series))
        ms.append(got.ms)
        keys = [x.number.key for x in got.readings]
        per.append(
            {
                "card_id": r["card_id"],
                "want": want,
                "read": keys,
                "legible": bool(keys),
                "right": want in keys,
            }
        )
    return {
        "crops": len(per),
        "legible": sum(p["legible"] for p in per),
        "right": sum(p["right"] for p in per),
        "first_reading_right": sum(bool(p["read"]) and p["read"][0] == p["want"] for p in per),
        "ms_p50": pct(ms, 50),
        "ms_p90": pct(ms, 90),
        "per_crop": per,
    }


def read_listing_photos(detector: str, limit: int | None) -> dict:
    rows = load_photo_rows(REAL / "photos-dev.csv", limit)
    det = make_detector(detector, 0.5)
    found, legible, right, heights, ms = 0, 0, 0, [], []
    with progress(len(rows), "reading photos-dev numbers") as advance:
        for r in rows:
            im = load_rgb(r["path"])
            dets = det.detect(im)
            advance(1)
            if not dets:
                continue
            best = max(dets, key=lambda d: d.score)
            crop = rectify(im, refine_corners(im, best.corners))
            found += 1
            heights.append(crop.shape[0])
            got = read_printed(crop, ("right",), min_height=0)  # base1: WotC, bottom right
            ms.append(got.ms)
            want = parse_number(r["card_id"].split("-", 1)[1]).key
            legible += got.legible
            right += want in [x.number.key for x in got.readings]
    return {
        "photos": len(rows),
        "card_found": found,
        "legible": legible,
        "right": right,
        "crop_height_p50": pct(heights, 50),
        "ms_p50": pct(ms, 50),
    }


def reprints(model: str, work: Path, n: int, crop_width: int, seed: int) -> dict:
    cat = synth_cards(work / "cat", n=n, seed=seed, height=1024, reprint_fraction=0.4, overwrite=True)
    emb = load_embedder(model)
    db = CardDB.build(emb, cat, work / "db", overwrite=True, workers=2)
    calibrate_on_views(db, emb, cat, cards=min(200, len(cat)))
    db = CardDB.load(db.root, emb)
    printings: dict[str, list[str]] = {}
    for r in cat:
        printings.setdefault(r.name, []).append(r.id)
    ids = [c for group in printings.values() if len(group) > 1 for c in group]
    images, labels = synthetic_queries(cat, ids, seed=seed + 1, presets=("default",), crop_width=crop_width)
    off = Matcher(db, emb, MatchConfig(read_numbers=False))
    on = Matcher(db, emb, MatchConfig(read_numbers=True))
    counts = {
        k: 0 for k in ("ambiguous_sets", "by_strip", "by_number", "still_ambiguous", "wrong_off", "wrong_on")
    }
    counts |= {"right_off": 0, "right_on": 0, "ocr_runs": 0, "ocr_agreed": 0}
    ocr_ms, rows = [], []
    with progress(len(images), "deciding reprints") as advance:
        for q0, t in zip(off.prepare(images), labels, strict=True):
            raw = decide(off.candidates(q0), off.calibration)
            d_off = off.resolve(q0, off.printings(q0, raw))
            q1 = on.query(q0.image, q0.embedding)
            t0 = time.perf_counter()
            d_on = on.decide(q1)
            extra = (time.perf_counter() - t0) * 1e3
            in_doubt = raw.kind == AMBIGUOUS or (raw.kind == MATCH and d_off.kind == AMBIGUOUS)
            if d_on.printed is not None:
                counts["ocr_runs"] += 1
                counts["ocr_agreed"] += bool(d_on.printed.get("agrees"))
                ocr_ms.append(d_on.printed["ms"])
            if in_doubt:
                counts["ambiguous_sets"] += 1
                counts["by_strip"] += d_off.kind == MATCH and d_off.resolved_by == "strip"
                counts["by_number"] += d_on.kind == MATCH and d_on.resolved_by == "number"
                counts["still_ambiguous"] += d_on.kind == AMBIGUOUS
            for tag, d in (("off", d_off), ("on", d_on)):
                counts[f"right_{tag}"] += d.kind == MATCH and d.card_id == t
                counts[f"wrong_{tag}"] += d.kind == MATCH and d.card_id != t
            rows.append(
                {
                    "truth": t,
                    "off": d_off.card_id or d_off.kind,
                    "on": d_on.card_id or d_on.kind,
                    "resolved_by": d_on.resolved_by,
                    "printed": d_on.printed,
                    "ms": round(extra, 1),
                }
            )
            advance(1)
    return {
        "cards": len(cat),
        "reprinted_cards": len(ids),
        "queries": len(images),
        "crop_width": crop_width,
        **counts,
        "ocr_ms_p50": pct(ocr_ms, 50),
        "ocr_ms_p95": pct(ocr_ms, 95),
        "per_query": rows,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--detector", default="classical")
    ap.add_argument("--photos-limit", type=int, default=None)
    ap.add_argument("--cards", type=int, default=60, help="synthetic catalog size (40 %% reprints)")
    ap.add_argument("--crop-width", type=int, default=503)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--work", default=str(ROOT / "runs" / "printed-numbers"))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "printed_numbers"))
    args = ap.parse_args()
    if not tesseract_available():
        raise SystemExit("tesseract is not installed (apt-get install tesseract-ocr)")
    work = Path(args.work)
    real_cat = ROOT / "runs" / "real-catalog"
    catalog = Catalog.load(real_cat) if (real_cat / "card_metadata.json").is_file() else None
    out = {"machine": f"{platform.machine()}, {platform.python_version()}"}
    out["real_crops"] = read_real_crops(catalog)
    print({k: v for k, v in out["real_crops"].items() if k != "per_crop"})
    out["reprints"] = reprints(args.model, work / "reprints", args.cards, args.crop_width, args.seed)
    print({k: v for k, v in out["reprints"].items() if k != "per_query"})
    out["photos_dev"] = read_listing_photos(args.detector, args.photos_limit)
    print(out["photos_dev"])
    write_json_atomic(Path(args.out + ".json"), out)
    write_bytes_atomic(Path(args.out + ".md"), render_md(out).encode())
    print(render_md(out))


def render_md(o: dict) -> str:
    c, r, p = o["real_crops"], o["reprints"], o["photos_dev"]
    return "\n".join(
        [
            "# Reading the collector number\n",
            f"{o['machine']}; Tesseract 5 (Debian `tesseract-ocr`), the corner the card's era prints it in.\n",
            "| set | read (a number came out) | right number | ms p50 |",
            "|---|---|---|---|",
            f"| real phone crops (queries-dev, Paldea Evolved) | {c['legible']}/{c['crops']} | {c['right']}/{c['crops']} | {c['ms_p50']} |",
            f"| photos-dev listing photos (card crop p50 {p['crop_height_p50']} px tall) | {p['legible']}/{p['card_found']} | {p['right']}/{p['card_found']} | {p['ms_p50']} |",
            "",
            f"Simulated same-art reprints ({r['cards']} synthetic cards, {r['reprinted_cards']} of them printings "
            f"that share art and name; one {r['crop_width']} px wide simulated photo each):\n",
            "| | number reading off | on |",
            "|---|---|---|",
            f"| ambiguous sets (raw) | {r['ambiguous_sets']} | {r['ambiguous_sets']} |",
            f"| resolved by the strip / by the number | {r['by_strip']} / - | - / {r['by_number']} |",
            f"| still ambiguous | | {r['still_ambiguous']} |",
            f"| named right / wrong (all {r['queries']} photos) | {r['right_off']} / {r['wrong_off']} | {r['right_on']} / {r['wrong_on']} |",
            f"| OCR runs (agreed) | | {r['ocr_runs']} ({r['ocr_agreed']}) |",
            f"| OCR ms per card it ran on, p50 / p95 | | {r['ocr_ms_p50']} / {r['ocr_ms_p95']} |",
            "",
        ]
    )


if __name__ == "__main__":
    main()
