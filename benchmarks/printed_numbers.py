"""Reading the collector number: real crops, real listing photos, and simulated same-art reprints.

1. The 10 real phone crops of ``queries-dev`` (Paldea Evolved, numbers legible): read rate (a
   number came out) and exact-number accuracy, ms per crop.
2. ``photos-dev`` (~225×300 listing photos of base1 cards): each photo's card found (``--detector``)
   and rectified, its number corner read at whatever resolution it has: how often it is legible
   at all, and right.
3. Simulated same-art reprints: a synthetic catalog whose reprints share art and name but not
   their number (``reprint_fraction``), a DB built with ``--model``, and one simulated photo
   (``--crop-width`` px wide) of every printing, decided with the fused score on inliers alone and
   a wide margin, so every same-art printing ties (an ambiguous set, as in the test suite); each
   set then resolved by the bottom strip (pixels), by the number (OCR), and by both in turn (what
   ``Matcher.decide`` does: the number, then the strip): right, wrong, still ambiguous, and OCR's time per card.

Writes benchmarks/results/printed_numbers.{json,md}.

    .venv/bin/python benchmarks/printed_numbers.py --model runs/export-lite0/students/hailo-lite0/model.onnx \
        --detector runs/detector-real/best.pt [--photos-limit 400]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from common import machine, write_results

from cardid.detect.rectify import rectify, refine_corners
from cardid.embed import load_embedder
from cardid.eval.printings import evaluate_reprints, pct
from cardid.fit.outcomes import load_photo_rows
from cardid.images import load_rgb
from cardid.io import read_csv_rows, read_json
from cardid.printing.number import parse_number
from cardid.printing.ocr import engine_info, layout_of, read_printed, tesseract_available
from cardid.progress import progress
from cardid.recognize import make_detector

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT / ".." / "shared" / "realdata"


def read_real_crops() -> dict:
    series = {
        s["id"]: s.get("series") for s in read_json(REAL / "pokemon-tcg-data" / "sets" / "en.json", "sets")
    }
    rows = list(read_csv_rows(REAL / "queries-dev.csv", ("file", "card_id"), "queries"))
    rows = [r for r in rows if r.get("kind") == "photo_crop"]
    per, ms = [], []
    for r in rows:
        im = load_rgb(REAL / r["file"])
        want = parse_number(r["card_id"].split("-", 1)[1]).key
        got = read_printed(im, layout_of(series.get(r["card_id"].split("-", 1)[0])))
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
        "detector": detector,
        "photos": len(rows),
        "card_found": found,
        "legible": legible,
        "right": right,
        "crop_height_p50": pct(heights, 50),
        "ms_p50": pct(ms, 50),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--detector", default="classical")
    ap.add_argument("--photos-limit", type=int, default=None)
    ap.add_argument("--cards", type=int, default=40, help="synthetic catalog size (40 %% reprints)")
    ap.add_argument("--parts", default="real,reprints,photos", help="which of the three to (re)run")
    ap.add_argument("--crop-widths", default="503,720", help="simulated photo widths of the reprint part")
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--work", default=str(ROOT / "runs" / "printed-numbers"))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "printed_numbers"))
    args = ap.parse_args()
    if not tesseract_available():
        raise SystemExit("Tesseract is not installed (pip install 'cardid[ocr]')")
    work, parts = Path(args.work), set(args.parts.split(","))
    old = Path(args.out + ".json")
    out = read_json(old, "earlier results") if old.is_file() else {}
    out["machine"] = machine()
    out["ocr_engine"] = engine_info()
    if "real" in parts:
        out["real_crops"] = read_real_crops()
        print({k: v for k, v in out["real_crops"].items() if k != "per_crop"})
    if "reprints" in parts:
        emb = load_embedder(args.model)
        out["reprints"] = {}
        for w in [int(x) for x in args.crop_widths.split(",")]:
            r = evaluate_reprints(emb, work / "reprints", args.cards, w, args.seed)
            out["reprints"][str(w)] = r | {"model": args.model}
            print({k: v for k, v in r.items() if k != "per_set"})
    if "photos" in parts:
        out["photos_dev"] = read_listing_photos(args.detector, args.photos_limit)
        print(out["photos_dev"])
    write_results(args.out, out, render_md(out))
    print(render_md(out))


def engine_line(e: dict) -> str:
    if e.get("engine") == "tesserocr":
        return f"Tesseract {e['version']} in process (tesserocr), tessdata_fast `eng` ({e['model_sha256'][:12]}…)"
    return f"Tesseract {e.get('version', '5')} (the `tesseract` program)"


def _model_cell(r: dict) -> str:
    if "model_right" not in r:  # results from before the printing model
        return "—"
    return f"**{r['model_right']} / {r['model_wrong']}**"


def render_md(o: dict) -> str:
    c, p = o["real_crops"], o["photos_dev"]
    lines = [
        "# Reading the collector number\n",
        f"{o['machine']}; {engine_line(o.get('ocr_engine') or {})}; the corner the card's era prints it "
        f"in, in `cardid.printing.ocr.PASSES` until a reading agrees.\n",
        "| set | read (a number came out) | right number | ms p50 |",
        "|---|---|---|---|",
        f"| real phone crops (queries-dev, Paldea Evolved) | {c['legible']}/{c['crops']} | {c['right']}/{c['crops']} "
        f"| {c['ms_p50']} |",
        f"| photos-dev listing photos ({p.get('detector', 'YOLO')} finder; card crop p50 {p['crop_height_p50']} px "
        f"tall) | {p['legible']}/{p['card_found']} "
        f"| {p['right']}/{p['card_found']} | {p['ms_p50']} |",
        "",
    ]
    runs = o["reprints"] if "sets" not in o["reprints"] else {str(o["reprints"]["crop_width"]): o["reprints"]}
    first = next(iter(runs.values()))
    lines += [
        f"Simulated same-art reprints: {first['cards']} synthetic cards, {first['reprinted_cards']} of them "
        "printings sharing art and name but not their number, in a DB built with "
        f"`{first.get('model', '?')}`; one simulated photo of each, decided with every same-art printing tied "
        "(an ambiguous set), then resolved:\n",
        "| photo width | ambiguous sets | by the strip (pixels): right / wrong | by the number (OCR) | number, then strip "
        "(the rules) | still ambiguous | printing model (fitted on another synthetic catalog) | OCR ms p50 / p95 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for w, r in runs.items():
        s = r["sets"]
        lines.append(
            f"| {w} px | {s} | {r['strip_right']} / {r['strip_wrong']} | {r['number_right']} / {r['number_wrong']} "
            f"| **{r['both_right']} / {r['both_wrong']}** | {s - r['both_right'] - r['both_wrong']} "
            f"| {_model_cell(r)} | {r['ocr_ms_p50']} / {r['ocr_ms_p95']} |"
        )
    lines += [
        "",
        "Where the number decided nothing it was illegible or named no member of the set: "
        + "; ".join(
            f"{w} px: {r['number_illegible']} illegible, {r['number_no_member']} no member"
            for w, r in runs.items()
        )
        + ".",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
