"""Does the OpenCV release change real accuracy? photos-dev end to end with each version, same model.

For each ``--version`` of opencv-python-headless, the whole of `cardid eval photos` runs in a
child process that imports that release: the DB of the 884 real scans is built (ORB keypoints,
strips), calibrated on simulated views, and the 1,696 listing photos and 16 dev crops are
recognised with the classical finder. The model is the same file for every version. A version
other than the locked one is installed, without dependencies, into ``--work/opencv-<version>``
and put first on ``PYTHONPATH``; the project's environment is not touched.

    .venv/bin/python benchmarks/opencv_versions.py --model runs/frozen-lite0 \
        --version 5.0.0.93 --version 5.1.0.95

Summaries: benchmarks/results/opencv_versions.{json,md}; per-photo reports stay in ``--work``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from importlib.metadata import version as installed_version
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, write_results

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT / ".." / "shared" / "realdata"
KEYS = ("recall@1", "wrong_rate", "top1_no_threshold", "no_card_rate", "ms_p50")


def run_version(v: str, model: str, work: Path, limit: int | None) -> dict:
    env = dict(os.environ)
    if v != installed_version("opencv-python-headless"):
        target = work / f"opencv-{v}"
        if not (target / "cv2").is_dir():
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--no-deps",
                    "--target",
                    str(target),
                    f"opencv-python-headless=={v}",
                ],
                check=True,
            )
        env["PYTHONPATH"] = os.pathsep.join([str(target), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    got = subprocess.run(
        [sys.executable, "-c", "import cv2; print(cv2.__version__)"], env=env, capture_output=True, text=True
    ).stdout.strip()
    if not v.startswith(got):
        raise SystemExit(f"asked for OpenCV {v}, the child process imports {got}")
    out = work / f"eval-{v}"
    cmd = [
        sys.executable,
        "-m",
        "cardid.cli",
        "eval",
        "photos",
        "--model",
        model,
        "--out",
        str(out),
        "--realdata",
        str(REAL),
        "--detector",
        "classical",
    ]
    if limit:
        cmd += ["--limit", str(limit)]
    subprocess.run(cmd, env=env, check=True)
    rep = json.loads((out / "report.json").read_text())
    sets = {}
    for name, s in rep["sets"].items():
        sets[name] = {k: s.get(k) for k in KEYS} | {"photos": s["photos"], "outcomes": s.get("outcomes")}
    return {"opencv": got, "db_build_s": rep["db_build_s"], "sets": sets}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--version", action="append", required=True, help="opencv-python-headless release")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--work", default=str(ROOT / "runs" / "bench-opencv"))
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    result = {
        "machine": machine(),
        "model": args.model,
        "finder": "classical",
        "limit": args.limit,
        "runs": {},
    }
    for v in args.version:
        result["runs"][v] = run_version(v, args.model, work, args.limit)
    md = [
        "# OpenCV releases on real photos (photos-dev, same model)\n",
        f"{result['machine']}; model `{args.model}`, classical finder; the DB built and calibrated "
        "(simulated views) under each release.\n",
        "| OpenCV | photos | R@1 | wrong | top-1 (no threshold) | no card | ambiguous | p50 ms | dev crops R@1 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for v, r in result["runs"].items():
        s, q = r["sets"]["photos-dev"], r["sets"].get("queries-dev", {})
        amb = (s.get("outcomes") or {}).get("ambiguous", 0) / max(s["photos"], 1)
        md.append(
            f"| {v} | {s['photos']} | {s['recall@1']:.3f} | {s['wrong_rate']:.3f} | "
            f"{s['top1_no_threshold']:.3f} | {s['no_card_rate']:.3f} | {amb:.3f} | {s['ms_p50']:.0f} | "
            f"{q.get('recall@1', float('nan')):.3f} |"
        )
    write_results(ROOT / "benchmarks" / "results" / "opencv_versions", result, "\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
