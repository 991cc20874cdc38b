"""Load on `cardid serve`: N concurrent clients on 127.0.0.1 against a real uvicorn process.

Prints throughput, p50/p99 latency, errors (503s counted apart) and the server's RSS before and
after the requests, and writes benchmarks/results/serve_load.{json,md}.

    .venv/bin/python benchmarks/serve_load.py --model MODEL --db DB [--detector best.pt] \
        --photo PHOTO [--photo …] [--clients 4 --requests 1000 --seconds 300]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
from common import machine, write_results

from cardid.serve import free_port, wait_ready

ROOT = Path(__file__).resolve().parents[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", required=True)
    ap.add_argument("--db", required=True)
    ap.add_argument("--detector", default="classical")
    ap.add_argument("--photo", action="append", required=True, help="photos to send (cycled)")
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=300.0, help="stop after this long at most")
    ap.add_argument("--queue", type=int, default=8)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "serve_load"))
    ap.add_argument("--python", default=sys.executable, help="the server's interpreter (another install)")
    args = ap.parse_args()
    result = run_load(args)
    write_results(args.out, result, markdown(result))


def run_load(args) -> dict:
    port = free_port()
    cmd = [args.python, "-m", "cardid.cli", "serve", "--model", args.model, "--db", args.db]
    cmd += ["--detector", args.detector, "--port", str(port), "--queue", str(args.queue)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        if not wait_ready(url, 120):
            raise SystemExit("the server did not come up")
        photos = [(Path(p).name, Path(p).read_bytes()) for p in args.photo]
        rss_idle = rss_mb(proc.pid)  # up, nothing recognised yet
        warm = httpx.post(url + "/v1/recognize", files={"file": photos[0]}, timeout=60)
        warm.raise_for_status()
        rss_before = rss_mb(proc.pid)
        lat, codes, lock = [], {}, threading.Lock()
        sent = [0]
        deadline = time.monotonic() + args.seconds

        def client(k: int) -> None:
            with httpx.Client(timeout=60) as c:
                while True:
                    with lock:
                        if sent[0] >= args.requests or time.monotonic() > deadline:
                            return
                        i = sent[0]
                        sent[0] += 1
                    t = time.perf_counter()
                    try:
                        code = c.post(
                            url + "/v1/recognize", files={"file": photos[i % len(photos)]}
                        ).status_code
                    except httpx.HTTPError:
                        code = -1
                    with lock:
                        codes[code] = codes.get(code, 0) + 1
                        if code == 200:
                            lat.append(time.perf_counter() - t)

        t0 = time.perf_counter()
        threads = [threading.Thread(target=client, args=(k,)) for k in range(args.clients)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        wall = time.perf_counter() - t0
        rss_after = rss_mb(proc.pid)
        ms = np.asarray(lat) * 1e3
        result = {
            "clients": args.clients,
            "requests": sum(codes.values()),
            "ok": codes.get(200, 0),
            "busy_503": codes.get(503, 0),
            "errors": sum(v for k, v in codes.items() if k not in (200, 503)),
            "seconds": round(wall, 1),
            "throughput_rps": round(codes.get(200, 0) / wall, 2),
            "p50_ms": round(float(np.percentile(ms, 50)), 1) if len(ms) else None,
            "p99_ms": round(float(np.percentile(ms, 99)), 1) if len(ms) else None,
            "rss_mb_idle": round(rss_idle, 1),
            "rss_mb_before": round(rss_before, 1),
            "rss_mb_after": round(rss_after, 1),
            "queue": args.queue,
            "model": args.model,
            "db": args.db,
            "detector": args.detector,
            "python": args.python,
            "photos": [n for n, _ in photos],
            "machine": machine(),
        }
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    print(json.dumps(result, indent=1))
    return result


def markdown(result: dict) -> str:
    return (
        "# `cardid serve` under load\n\n"
        f"{result['clients']} concurrent clients on 127.0.0.1, {result['requests']} requests "
        f"({result['machine']}; model `{result['model']}`, finder `{result['detector']}`):\n\n"
        "| ok | 503 busy | errors | req/s | p50 ms | p99 ms | RSS before → after (MB) |\n|---|---|---|---|---|---|---|\n"
        f"| {result['ok']} | {result['busy_503']} | {result['errors']} | {result['throughput_rps']} | "
        f"{result['p50_ms']} | {result['p99_ms']} | {result['rss_mb_before']} → {result['rss_mb_after']} |\n"
    )


if __name__ == "__main__":
    main()
