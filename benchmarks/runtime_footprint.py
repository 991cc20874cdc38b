"""The runtime install beside the full one: size, cold start, server memory idle and under load, photos/s.

Builds a virtual environment from `requirements-runtime-lock.txt` alone (the base install plus the
`runtime` extra: no torch, no ultralytics) unless one is given, then measures the same ONNX student,
DB and ONNX finder with both interpreters:

* install size: the environment's site-packages on disk;
* cold start: a fresh `cardid recognize` of one photo (interpreter start, imports, model and DB
  load, one recognition), best of 3;
* `cardid serve`: RSS once up (idle), after the first photo, and after 4 clients' load
  (`benchmarks/serve_load.py`), with requests/s.

    .venv/bin/python benchmarks/runtime_footprint.py --model student.onnx --db DB \\
        --detector best.onnx --photo PHOTO [--photo …] [--requests 200]

Results: benchmarks/results/runtime_footprint.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

from common import machine, write_results
from serve_load import run_load

ROOT = Path(__file__).resolve().parents[1]


def purelib(python: str) -> str:
    """Where ``python`` installs packages (its site-packages)."""
    code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    return subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def site_mb(python: str) -> float:
    du = subprocess.run(["du", "-sk", purelib(python)], capture_output=True, text=True, check=True)
    du = du.stdout.split()[0]
    return round(int(du) / 1024, 1)


def build_runtime_env(venv: Path) -> str:
    """A venv with the runtime lock's packages only, and cardid from this tree (a .pth line)."""
    python = venv / "bin" / "python"
    if not python.is_file():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        lock = ROOT / "requirements-runtime-lock.txt"
        pip = [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--require-hashes",
            "--no-deps",
            "-r",
            str(lock),
        ]
        subprocess.run(pip, check=True)
        Path(purelib(str(python)), "cardid-src.pth").write_text(str(ROOT / "src") + "\n")
    return str(python)


def cold_start_s(python: str, args) -> float:
    cmd = [python, "-m", "cardid.cli", "recognize", args.photo[0], "--model", args.model, "--db", args.db]
    cmd += ["--detector", args.detector, "--json", "/dev/null", "--overwrite"]
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"{python}: cardid recognize failed:\n{proc.stderr[-1500:]}")
        best = min(best, time.perf_counter() - t)
    return round(best, 2)


def torch_free(python: str) -> bool:
    code = "import importlib.util as u; print(u.find_spec('torch') is None)"
    return subprocess.run([python, "-c", code], capture_output=True, text=True).stdout.strip() == "True"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="an ONNX student")
    ap.add_argument("--db", required=True)
    ap.add_argument("--detector", required=True, help="an ONNX finder, or 'classical'")
    ap.add_argument("--photo", action="append", required=True)
    ap.add_argument("--venv", type=Path, default=ROOT / "runs" / "runtime-venv")
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "runtime_footprint"))
    args = ap.parse_args()
    installs = {"full": sys.executable, "runtime": build_runtime_env(args.venv)}
    rows = {}
    for name, python in installs.items():
        load = run_load(
            SimpleNamespace(
                model=args.model,
                db=args.db,
                detector=args.detector,
                photo=args.photo,
                clients=4,
                requests=args.requests,
                seconds=300.0,
                queue=8,
                python=python,
            )
        )
        rows[name] = {
            "python": python,
            "torch_installed": not torch_free(python),
            "site_packages_mb": site_mb(python),
            "cold_start_s": cold_start_s(python, args),
            "rss_mb_idle": load["rss_mb_idle"],
            "rss_mb_first_photo": load["rss_mb_before"],
            "rss_mb_after_load": load["rss_mb_after"],
            "photos_per_s": load["throughput_rps"],
            "p50_ms": load["p50_ms"],
            "errors": load["errors"],
        }
    result = {"installs": rows, "model": args.model, "detector": args.detector, "machine": machine()}
    print(json.dumps(result, indent=1))
    md = [
        "# The runtime install beside the full one\n",
        f"Same ONNX student (`{args.model}`), DB and finder (`{args.detector}`); {result['machine']}; "
        f"4 clients, {args.requests} requests.\n",
        "| install | torch | site-packages MB | cold start s | RSS idle MB | after 1st photo | after load | photos/s | p50 ms |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        md.append(
            f"| {name} | {'yes' if r['torch_installed'] else 'no'} | {r['site_packages_mb']} | {r['cold_start_s']} | "
            f"{r['rss_mb_idle']} | {r['rss_mb_first_photo']} | {r['rss_mb_after_load']} | {r['photos_per_s']} | {r['p50_ms']} |"
        )
    write_results(args.out, result, "\n".join(md) + "\n")


if __name__ == "__main__":
    main()
