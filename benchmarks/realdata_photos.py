"""Whole real photos end to end, every model × finder side by side in one run.

For each ``--run NAME=MODEL@FINDER`` (FINDER: ``classical`` or a YOLO ``.pt``/``.onnx``) this runs
`cardid eval photos` on ../shared/realdata/photos-dev.csv (1,696 listing photos) and the 16 dev
crops, and for each YOLO finder `cardid eval detection` on the held-out real split of the
detection set (``--real-test DIR``, never trained on) beside the classical finder. Summaries go to
benchmarks/results/photos_realdata.{json,md}; per-photo reports (HTML with every failure) stay in
``--work``.

    .venv/bin/python benchmarks/realdata_photos.py \
        --run frozen=runs/frozen-opennsfw@classical \
        --run fine-tuned=runs/real-opennsfw@runs/detector-real/best.pt \
        --real-test runs/det-real/images/real_test [--limit 400]
"""

from __future__ import annotations

import argparse
import logging
import platform
from pathlib import Path

import torch

from cardid.detect.classical import ClassicalFinder
from cardid.detect.evaluate import evaluate_detector, labelled_images
from cardid.eval.photos import evaluate_photos
from cardid.eval.photos_report import format_report
from cardid.io import write_bytes_atomic, write_json_atomic
from cardid.recognize import make_detector

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT / ".." / "shared" / "realdata"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--run", action="append", default=[], help="NAME=MODEL@FINDER (repeatable)")
    ap.add_argument(
        "--real-test", default=None, help="images/real_test of a `cardid data detection --real` set"
    )
    ap.add_argument("--limit", type=int, default=None, help="a fixed random sample of photos-dev")
    ap.add_argument("--conf", type=float, default=0.5, help="YOLO confidence threshold for recognition")
    ap.add_argument("--work", default=str(ROOT / "runs" / "bench-photos"))
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    work = Path(args.work)
    out: dict = {
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}",
        "limit": args.limit,
        "runs": {},
        "detection": {},
    }
    md = [
        "# Whole real photos end to end\n",
        f"{out['machine']}; thresholds calibrated on simulated views only.\n",
    ]
    for spec in args.run:
        name, rest = spec.split("=", 1)
        model, finder = rest.rsplit("@", 1)
        rep = evaluate_photos(REAL, model, work / name, detector=finder, limit=args.limit, conf=args.conf)
        summary = {k: {kk: vv for kk, vv in v.items() if kk != "per_photo"} for k, v in rep["sets"].items()}
        out["runs"][name] = {
            "model": model,
            "finder": finder,
            "identity": rep["model_identity"],
            "sets": summary,
        }
        md += [f"## {name}: `{model}` with the `{finder}` finder\n", "```", format_report(rep), "```\n"]
        logging.info("%s\n%s", name, format_report(rep))
        if args.real_test and finder != "classical" and finder not in out["detection"]:
            pairs = labelled_images([args.real_test])
            det = {
                "detector": evaluate_detector(make_detector(finder, conf=0.05).detect, pairs),
                "classical": evaluate_detector(ClassicalFinder().detect, pairs),
            }
            out["detection"][finder] = det
            md += [f"Held-out real detection photos ({len(pairs)}, never trained on):\n"]
            md += [
                "| finder | P (conf 0.05) | R | AP@0.5 | best P at R ≥ 0.95 | at conf | ms |",
                "|---|---|---|---|---|---|---|",
            ]
            for k, r in det.items():
                op = r["at_recall_0.95"]
                conf = f"{op['score_threshold']:.3f}" if op["score_threshold"] is not None else "-"
                md.append(
                    f"| {k} | {r['precision']:.3f} | {r['recall']:.3f} | {r['ap50']:.3f} | "
                    f"{op['precision']:.3f} | {conf} | {r['ms_per_image']:.0f} |"
                )
            md.append("")
    write_json_atomic(ROOT / "benchmarks" / "results" / "photos_realdata.json", out)
    write_bytes_atomic(
        ROOT / "benchmarks" / "results" / "photos_realdata.md", ("\n".join(md) + "\n").encode()
    )
    print("\n".join(md))


if __name__ == "__main__":
    main()
