"""The full catalog: a DB of all 19,120 cards beside one of the 884 real scans, in one run.

Every card of ../shared/realdata/pokemon-tcg-data (166 sets) is imported. The 884 cards with a real
scan in ../shared/realdata/gallery use it; every other card gets a **stand-in scan**: the synthetic
card renderer carrying the card's real name, set and collector number, with procedural art
(:func:`cardid.synth.cards.render_stand_in`), rendered once into ``--work``. Stand-ins fill the DB to
its real size; they are not what those cards look like (real distractors share real frames and art,
so they are harder than these). ``--missing skip`` leaves those cards out instead, as
``cardid index build --skip-missing`` does.

The same model then builds two DBs with every verification feature: all cards, and the 884 real
cards alone. Both are calibrated on the same simulated views of the same 300 real cards, so the
only difference between them is the extra cards. Reported: build time and cards/s (parallel decode
and extraction), DB size by file, load time and resident memory (in a fresh process), search and
search+verify latency p50/p99, and recognition on the real dev crops and on ``photos-dev`` with
each DB. Writes benchmarks/results/catalog_scale.{json,md}.

    .venv/bin/python benchmarks/catalog_scale.py --model runs/export-lite0/students/hailo-lite0/model.onnx \
        --detector runs/detector-real/best.pt [--limit 400] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import platform
import random
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from common import write_results

from cardid.catalog.ids import card_file_stem
from cardid.catalog.pokemontcg import read_pokemontcg
from cardid.catalog.records import CardRecord, Catalog
from cardid.db.build import build_db as build_card_db
from cardid.db.store import CardDB
from cardid.decision.match import MatchConfig, Matcher
from cardid.embed import load_embedder
from cardid.fit.calibrate import calibrate_db, synthetic_queries
from cardid.fit.outcomes import evaluate_photo_set, load_photo_rows, summarise
from cardid.images import load_rgb
from cardid.io import read_csv_rows, read_json, write_bytes_atomic
from cardid.progress import progress
from cardid.recognize import Recognizer, make_detector
from cardid.synth.cards import render_stand_in

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT / ".." / "shared" / "realdata"
TCG = REAL / "pokemon-tcg-data"
RESULTS = ROOT / "benchmarks" / "results"


def _render(job: tuple[dict, int | None, str]) -> None:
    rec, total, path = job
    rgba = render_stand_in(CardRecord.model_validate(rec), total)
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    assert ok
    write_bytes_atomic(path, buf.tobytes())


def import_catalog(work: Path, missing: str, workers: int, sets=None) -> tuple[Catalog, list[str], dict]:
    """All pokemontcg cards; real scans where the gallery has one, else stand-ins (or no scan)."""
    t = time.perf_counter()
    records = read_pokemontcg(TCG, sets)  # a card id repeated across sets is a CatalogError here
    import_s = time.perf_counter() - t
    totals = {s["id"]: s.get("printedTotal") for s in read_json(TCG / "sets" / "en.json", "sets")}
    gallery = {
        r["card_id"]: r["file"]
        for r in read_csv_rows(REAL / "gallery.csv", ("card_id", "file"), "gallery", "card_id")
    }
    known = {r.id for r in records}
    stand_in_dir = work / "stand-ins"
    stand_in_dir.mkdir(parents=True, exist_ok=True)
    out, jobs, n_stand_in = [], [], 0
    for r in records:
        if r.id in gallery:
            image = str((REAL / gallery[r.id]).resolve())
        elif missing == "skip":
            image = None
        else:
            path = stand_in_dir / f"{card_file_stem(r.id)}.png"
            image, n_stand_in = str(path), n_stand_in + 1
            if not path.is_file():
                jobs.append((r.model_dump(), totals.get(r.set_id), str(path)))
        out.append(r.model_copy(update={"image_file": image}))
    t = time.perf_counter()
    if jobs:
        with progress(len(jobs), "rendering stand-ins") as advance, mp.Pool(workers) as pool:
            for _ in pool.imap_unordered(_render, jobs, chunksize=32):
                advance(1)
    catalog = Catalog(work / "catalog", out)
    (work / "catalog").mkdir(exist_ok=True)
    catalog.save()
    info = {
        "sets": len({r.set_id for r in records}),
        "cards": len(records),
        "import_s": round(import_s, 2),
        "real_scans": sum(r.id in gallery for r in records),
        "stand_in_scans": n_stand_in,
        "stand_ins_rendered_now": len(jobs),
        "render_s": round(time.perf_counter() - t, 1),
        "no_scan": sum(r.image_file is None for r in out),
        # (with --sets, the gallery's other sets are expected here)
        "gallery_scans_not_in_metadata": len(set(gallery) - known),
        "missing": missing,
    }
    return catalog, [r.id for r in records if r.id in gallery], info


def build_db(emb, catalog: Catalog, out: Path, workers: int) -> tuple[CardDB, dict]:
    n = len(catalog) - len(catalog.missing_images())
    marks: dict[str, float] = {}
    done = 0
    t0 = time.perf_counter()
    with progress(2 * n, f"building a DB of {n} cards") as advance:

        def step(k: int = 1) -> None:
            nonlocal done
            done += k
            if done >= n and "embedded" not in marks:
                marks["embedded"] = time.perf_counter() - t0
            advance(k)

        db = build_card_db(
            emb, catalog, out, overwrite=True, workers=workers, progress=step, skip_missing=True
        )
    total = time.perf_counter() - t0
    files = {p.relative_to(out).as_posix(): p.stat().st_size for p in sorted(out.rglob("*")) if p.is_file()}
    return db, {
        "cards": len(db),
        "skipped_missing": len(db.meta.get("skipped_missing") or []),
        "build_s": round(total, 1),
        "embed_s": round(marks.get("embedded", total), 1),
        "features_s": round(total - marks.get("embedded", total), 1),
        "cards_per_s": round(len(db) / total, 1),
        "size_mb": {k: round(v / 2**20, 2) for k, v in files.items()},
        "total_mb": round(sum(files.values()) / 2**20, 1),
    }


LOAD_PROBE = r"""
import json, sys, time
def peak_mb():  # VmHWM, not ru_maxrss: that one keeps the forking parent's peak across exec
    return next(int(x.split()[1]) for x in open("/proc/self/status") if x.startswith("VmHWM")) / 1024
t = time.perf_counter()
from cardid.db.store import CardDB
from cardid.embed import load_embedder
from cardid.recognize import Recognizer, make_detector
imports = time.perf_counter() - t
t = time.perf_counter(); db = CardDB.load(sys.argv[1]); load = time.perf_counter() - t
t = time.perf_counter(); CardDB.load(sys.argv[1], verify_files=False); load_nohash = time.perf_counter() - t
rss_db = peak_mb()
t = time.perf_counter()
rec = Recognizer.open(load_embedder(sys.argv[2]), db, make_detector(sys.argv[3]))
open_s = time.perf_counter() - t
print(json.dumps({"imports_s": imports, "db_load_s": load, "db_load_no_hash_check_s": load_nohash,
                  "model_and_detector_s": open_s, "peak_rss_after_db_mb": rss_db,
                  "peak_rss_mb": peak_mb()}))
"""


def load_probe(db: Path, model: str, detector: str) -> dict:
    """Open the DB (hashes checked), the model and the finder in a fresh process."""
    runs = []
    for _ in range(3):  # the page cache is warm after the first; the best of three is reported
        p = subprocess.run(
            [sys.executable, "-c", LOAD_PROBE, str(db), model, detector], capture_output=True, text=True
        )
        if p.returncode:
            raise SystemExit(f"load probe failed:\n{p.stderr[-2000:]}")
        runs.append(json.loads(p.stdout.strip().splitlines()[-1]))
    best = min(runs, key=lambda r: r["db_load_s"])
    return {k: round(v, 3) if k.endswith("_s") else round(v, 1) for k, v in best.items()}


def latencies(db: CardDB, emb, images: list[np.ndarray]) -> dict:
    """Per crop: the embedding search alone; search + pHash + verification + decision; and the
    same with the collector number read where the printing is in doubt (OCR, when installed)."""
    plain = Matcher(db, emb, MatchConfig(read_numbers=False))
    reading = Matcher(db, emb, MatchConfig(read_numbers=True))
    embs = emb.embed(images)
    search, decide, numbers, read = [], [], [], 0
    for im, e in zip(images, embs, strict=True):
        t = time.perf_counter()
        db.search(e, k=plain.config.shortlist)
        search.append(time.perf_counter() - t)
        t = time.perf_counter()
        plain.decide(plain.query(im, e))
        decide.append(time.perf_counter() - t)
        t = time.perf_counter()
        d = reading.decide(reading.query(im, e))
        numbers.append(time.perf_counter() - t)
        read += d.printed is not None and d.printed.get("skipped") is None

    def pct(ts):
        return {
            "p50_ms": round(float(np.percentile(ts, 50)) * 1e3, 2),
            "p99_ms": round(float(np.percentile(ts, 99)) * 1e3, 2),
        }

    return {
        "crops": len(images),
        "search": pct(search),
        "search_verify_decide": pct(decide),
        "with_number_reading": pct(numbers) | {"ocr_runs": read},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="the deployed embedding artefact (ONNX student dir)")
    ap.add_argument("--detector", default="classical", help="card finder for photos-dev")
    ap.add_argument("--conf", type=float, default=0.5)
    ap.add_argument("--limit", type=int, default=None, help="a fixed random sample of photos-dev")
    ap.add_argument("--workers", type=int, default=2, help="decode/extract workers for the builds")
    ap.add_argument("--missing", choices=("stand-in", "skip"), default="stand-in")
    ap.add_argument("--calib-cards", type=int, default=300)
    ap.add_argument(
        "--read-numbers", action=argparse.BooleanOptionalAction, default=True, help="as `cardid recognize`"
    )
    ap.add_argument("--sets", nargs="*", default=None, help="only these set ids (a quick trial run)")
    ap.add_argument("--work", default=str(ROOT / "runs" / "catalog-scale"))
    ap.add_argument("--out", default=str(RESULTS / "catalog_scale"))
    args = ap.parse_args()
    if not TCG.is_dir():
        raise SystemExit(f"needs the real data at {REAL} (see its README)")
    work = Path(args.work)
    catalog, real_ids, cat_info = import_catalog(work, args.missing, args.workers, args.sets)
    print(json.dumps(cat_info))
    emb = load_embedder(args.model)
    calib_ids = random.Random(0).sample(sorted(real_ids), min(args.calib_cards, len(real_ids)))
    views, labels = synthetic_queries(catalog, calib_ids, seed=0)
    crops = load_photo_rows(REAL / "queries-dev.csv")
    photos = load_photo_rows(REAL / "photos-dev.csv", args.limit)
    detector = make_detector(args.detector, args.conf)
    out: dict = {
        "machine": f"{platform.machine()}, {mp.cpu_count()} cores, {platform.python_version()}",
        "model": args.model,
        "model_identity": emb.identity,
        "detector": args.detector,
        "read_numbers": args.read_numbers,
        "catalog": cat_info,
        "dbs": {},
    }
    for name, cat in (("all", catalog), ("real-884", catalog.subset(real_ids))):
        db, info = build_db(emb, cat, work / f"db-{name}", args.workers)
        t = time.perf_counter()
        cals = calibrate_db(db, emb, views, labels)  # also in db.meta: no reload needed
        info["calibrate_s"] = round(time.perf_counter() - t, 1)
        info["calibration"] = {k: round(v.threshold, 3) for k, v in cals.items()}
        info["load"] = load_probe(db.root, args.model, args.detector)
        info["latency"] = latencies(db, emb, [load_rgb(r["path"]) for r in crops] + views[:200])
        matcher = Matcher(db, emb, MatchConfig(read_numbers=args.read_numbers))
        rec = Recognizer(matcher, detector)
        with progress(len(photos) + len(crops), f"recognising with {len(db)} cards") as advance:
            info["photos-dev"] = summarise(evaluate_photo_set(rec, photos, advance))
            info["queries-dev"] = summarise(evaluate_photo_set(Recognizer(matcher), crops, advance))
        out["dbs"][name] = info
        print(name, json.dumps({k: v for k, v in info.items() if k != "size_mb"}))
        write_results(args.out, out, render_md(out))
    print(render_md(out))


def render_md(r: dict) -> str:
    c, dbs = r["catalog"], r["dbs"]
    names = list(dbs)
    lines = [
        "# The full catalog: 19k cards vs 884\n",
        f"{r['machine']}; model `{r['model']}` ({r['model_identity']}), finder `{r['detector']}`, "
        f"collector numbers read: {r.get('read_numbers', False)}.\n",
        f"{c['cards']} cards in {c['sets']} sets imported in {c['import_s']} s: {c['real_scans']} real scans, "
        f"**{c['stand_in_scans']} stand-in scans** (the synthetic renderer with the real name, set and number; "
        f"procedural art, easier distractors than real cards), {c['no_scan']} without a scan (skipped).\n",
        "| | " + " | ".join(f"{dbs[n]['cards']} cards" for n in names) + " |",
        "|---|" + "---|" * len(names),
    ]

    def row(label, f):
        lines.append(f"| {label} | " + " | ".join(f(dbs[n]) for n in names) + " |")

    row("build (embed + features)", lambda d: f"{d['build_s']} s ({d['embed_s']} + {d['features_s']})")
    row("cards/s", lambda d: f"{d['cards_per_s']}")
    row("calibration (300 views)", lambda d: f"{d['calibrate_s']} s")
    row("DB on disk", lambda d: f"{d['total_mb']} MB")
    row("DB load, hashes checked", lambda d: f"{d['load']['db_load_s']} s")
    row("DB load, no hash check", lambda d: f"{d['load']['db_load_no_hash_check_s']} s")
    row("model + finder open", lambda d: f"{d['load']['model_and_detector_s']} s")
    row("peak RSS: imports + DB", lambda d: f"{d['load']['peak_rss_after_db_mb']} MB")
    row("peak RSS: + model + finder", lambda d: f"{d['load']['peak_rss_mb']} MB")
    row(
        "search p50 / p99",
        lambda d: f"{d['latency']['search']['p50_ms']} / {d['latency']['search']['p99_ms']} ms",
    )
    row(
        "search + verify + decide p50 / p99",
        lambda d: (
            f"{d['latency']['search_verify_decide']['p50_ms']} / {d['latency']['search_verify_decide']['p99_ms']} ms"
        ),
    )
    row(
        "+ number reading where in doubt p50 / p99 (OCR runs)",
        lambda d: (
            f"{d['latency']['with_number_reading']['p50_ms']} / {d['latency']['with_number_reading']['p99_ms']}"
            f" ms ({d['latency']['with_number_reading']['ocr_runs']})"
        ),
    )
    for s in ("photos-dev", "queries-dev"):
        row(f"{s} Recall@1", lambda d, s=s: f"{d[s]['recall@1']:.3f}")
        row(f"{s} wrong", lambda d, s=s: f"{d[s]['wrong_rate']:.3f}")
        row(f"{s} ms p50 per photo", lambda d, s=s: f"{d[s]['ms_p50']:.0f}")
    big = names[0]
    lines += ["", f"DB files ({dbs[big]['cards']} cards), MB:", ""]
    lines += [f"- `{k}`: {v}" for k, v in dbs[big]["size_mb"].items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
