"""Which same-name printings share their art? Gallery scan against gallery scan, two ways.

A same-name card whose art differs (Fossil's Gastly against base1's) should be decided by its art,
never by the bottom strip; a reprint in a new frame (Evolutions' Charizard) shares the art and only
the strip or the number can tell it. This measures, for every pair of same-name printings in a
catalog (names with 2–6 printings), the ORB + USAC inliers between the two scans:

- ``whole``: keypoints of the whole card (what the DB stores for verification): the frame, the
  name and the attack text match across different art too;
- ``art``: keypoints of the art box only (9–56 % of the height, 6–94 % of the width, 800 ORB
  features on a 400×560 CLAHE-equalised grey card).

    .venv/bin/python benchmarks/same_art_pairs.py --catalog runs/real-catalog \
        --pairs same:base1-4:xy12-11 --pairs differs:base1-50:base3-33 ...

``--pairs`` labels known pairs (by looking at the scans); the script prints both distributions
and where the labelled pairs fall. Results: benchmarks/results/same_art_pairs.{json,md}.
"""

from __future__ import annotations

import argparse
import collections
import itertools
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, write_results

from cardid.catalog.records import Catalog, name_key
from cardid.db.verify import ART_BOX, VerifyConfig, art_features, extract
from cardid.db.verify import mutual_inliers as inliers

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--catalog", required=True)
    ap.add_argument("--pairs", action="append", default=[], help="same|differs:ID:ID (a pair looked at)")
    args = ap.parse_args()
    cat = Catalog.open(args.catalog)
    cfg = VerifyConfig()
    by = collections.defaultdict(list)
    for r in cat:
        by[name_key(r)].append(r.id)
    whole, art = {}, {}

    def feats(cid):
        if cid not in whole:
            im = cat.load_image(cid)
            whole[cid], art[cid] = extract(im, cfg), art_features(im)
        return whole[cid], art[cid]

    rows = []
    for name, ids in sorted(by.items()):
        if 2 <= len(ids) <= 6:
            for a, b in itertools.combinations(sorted(ids), 2):
                (wa, aa), (wb, ab) = feats(a), feats(b)
                rows.append(
                    {"a": a, "b": b, "name": name, "whole": inliers(wa, wb, cfg), "art": inliers(aa, ab, cfg)}
                )
    labels = {}
    for p in args.pairs:
        kind, a, b = p.split(":")
        labels[tuple(sorted((a, b)))] = kind
    for r in rows:
        r["label"] = labels.get((r["a"], r["b"]))

    def hist(key):
        return dict(sorted(collections.Counter(min(r[key], 60) // 5 * 5 for r in rows).items()))

    result = {
        "machine": machine(),
        "catalog": args.catalog,
        "pairs": len(rows),
        "art_box": ART_BOX,
        "histogram_whole": hist("whole"),
        "histogram_art": hist("art"),
        "rows": rows,
    }
    md = [
        "# Same-name printings: do they share their art?\n",
        f"{result['machine']}; {len(rows)} same-name pairs of `{args.catalog}`; inliers = the smaller "
        "direction of ORB + USAC between the two gallery scans.\n",
        "| pair | name | looked at | whole card | art box |",
        "|---|---|---|---|---|",
    ]
    for r in sorted((r for r in rows if r["label"]), key=lambda r: (r["label"], r["art"])):
        md.append(f"| {r['a']} / {r['b']} | {r['name']} | {r['label']} art | {r['whole']} | {r['art']} |")
    md += [
        "",
        f"All pairs, inliers in bands of 5 (60 = 60 or more): whole card {result['histogram_whole']}; "
        f"art box {result['histogram_art']}.",
    ]
    write_results(ROOT / "benchmarks" / "results" / "same_art_pairs", result, "\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
