"""The same decisions before and after a change: every photo's JSON record, both printing deciders.

Recognises a fixed sample of labelled photos (finder, rectify, embed, verify, decide) with one model,
DB and finder, once with the printing model and once with the rules, and writes every photo's
records without their timings (and without Tesseract's raw text, which is not stable). Run it on two checkouts (``PYTHONPATH=<other checkout>/src``) and
compare: a refactor that claims not to change behaviour must leave every record as it was.

    .venv/bin/python benchmarks/same_decisions.py --model runs/frozen-lite0 \\
        --db runs/eval-adapter2-lite0/db --limit 300 --out runs/decisions-after.jsonl
    .venv/bin/python benchmarks/same_decisions.py --compare runs/decisions-before.jsonl runs/decisions-after.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT / ".." / "shared" / "realdata"
TIMINGS = {"ms", "ms_read", "ms_ocr"}
#: Tesseract's raw text of an illegible crop is not the same twice (3 runs of one photo, 3 texts,
#: before and after any change here): compared are the numbers read from it, not the text
UNSTABLE = TIMINGS | {"text"}


def _strip_timings(x):
    if isinstance(x, dict):
        return {k: _strip_timings(v) for k, v in x.items() if k not in UNSTABLE}
    if isinstance(x, list):
        return [_strip_timings(v) for v in x]
    return x


def record(args) -> None:
    from cardid.data.photoset import load_photo_set
    from cardid.decision.match import MatchConfig
    from cardid.images import load_rgb
    from cardid.recognize import Recognizer

    photos = load_photo_set(args.photos).sample(args.limit, seed=0)
    photos.photos = photos.photos[: args.first]  # a quick check: the first of the same sample
    with open(args.out, "w") as out:
        for printing in ("model", "rules"):
            rec = Recognizer.open(args.model, args.db, args.detector, MatchConfig(printing=printing))
            for i, p in enumerate(photos.photos):
                r = rec.recognize_photo(load_rgb(p.path))
                # a typed result (PhotoResult), or the dict of checkouts from before it
                r = r.to_json() if hasattr(r, "to_json") else {k: v for k, v in r.items() if k[0] != "_"}
                row = {"printing": printing, "file": p.path.name, **_strip_timings(r)}
                out.write(json.dumps(row, sort_keys=True) + "\n")
                if i % 50 == 0:
                    print(printing, i, file=sys.stderr, flush=True)


def compare(a: Path, b: Path) -> int:
    """Records of the same photo and printing decider, compared (a smaller sample against a
    larger one compares the photos both hold)."""

    def load(p: Path) -> dict:
        return {
            (r["printing"], r["file"]): _strip_timings(r) for r in map(json.loads, p.read_text().splitlines())
        }

    ra, rb = load(a), load(b)
    both = sorted(set(ra) & set(rb))
    diff = [k for k in both if ra[k] != rb[k]]
    print(f"{len(both)} records in both ({len(ra)} before, {len(rb)} after); {len(diff)} differ")
    for k in diff[:5]:
        print(" before:", json.dumps(ra[k])[:400], "\n after: ", json.dumps(rb[k])[:400])
    return 0 if both and not diff else 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model")
    ap.add_argument("--db")
    ap.add_argument("--detector", default="classical")
    ap.add_argument("--photos", type=Path, default=REAL / "photos-dev.csv")
    ap.add_argument("--limit", type=int, default=300)
    ap.add_argument("--first", type=int, default=None, help="only the first N photos of the sample")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"))
    args = ap.parse_args()
    if args.compare:
        sys.exit(compare(*args.compare))
    if not (args.model and args.db and args.out):
        ap.error("--model, --db and --out are needed to record decisions")
    record(args)


if __name__ == "__main__":
    main()
