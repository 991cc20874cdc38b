"""Helpers shared by the benchmark scripts (run as ``python benchmarks/<script>.py``)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable


def timed(step: Callable[[], None], n: int, warmup: int, sync: Callable[[], None]) -> float:
    """Seconds for ``n`` calls of ``step`` after ``warmup`` calls, synchronised before and after."""
    for _ in range(warmup):
        step()
    sync()
    t = time.perf_counter()
    for _ in range(n):
        step()
    sync()
    return time.perf_counter() - t


def latency(fn: Callable, n: int, warmup: int = 0, inputs: list | None = None) -> dict[str, float]:
    """p50/p99 milliseconds of ``n`` calls of ``fn()`` — or of ``fn(x)`` cycling through ``inputs``."""
    import numpy as np

    def call(i: int) -> None:
        fn(inputs[i % len(inputs)]) if inputs is not None else fn()

    for i in range(warmup):
        call(i)
    ts = []
    for i in range(n):
        t = time.perf_counter()
        call(i)
        ts.append(time.perf_counter() - t)
    return {"p50_ms": float(np.percentile(ts, 50) * 1e3), "p99_ms": float(np.percentile(ts, 99) * 1e3)}


def report(result: dict, json_path: str | None) -> None:
    """Print the result as JSON and, when asked, keep it in a file (benchmarks/results/)."""
    print(json.dumps(result, indent=1))
    if json_path:
        with open(json_path, "w") as f:
            json.dump(result, f, indent=1)


def device_and_sync():
    """The benchmark device (CUDA when present) and a function that waits for its queued work."""
    import torch

    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return dev, (torch.cuda.synchronize if dev.type == "cuda" else (lambda: None))


def machine() -> str:
    """The machine a figure was measured on, for the results files."""
    import os
    import platform

    return f"{platform.machine()}, {len(os.sched_getaffinity(0))} CPUs"


def write_results(stem, result: dict, md: str) -> None:
    """``<stem>.json`` and ``<stem>.md`` (benchmarks/results/), each replaced atomically."""
    from pathlib import Path

    from cardid.io import write_bytes_atomic, write_json_atomic

    stem = Path(stem)
    write_json_atomic(stem.with_name(stem.name + ".json"), result)
    write_bytes_atomic(stem.with_name(stem.name + ".md"), md.encode())
