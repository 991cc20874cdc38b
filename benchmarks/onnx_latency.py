"""Latency of one crop and throughput at batch 64 through ONNX exports (fp32, fp16, int8) vs PyTorch.

    python benchmarks/onnx_latency.py --model runs/real-distill/students/small-cnn [--preset hailo] \
        --json benchmarks/results/onnx_latency_cpu.json

``--preset`` builds a random-init student of that preset instead (e.g. ``hailo``: ConvNeXt-Tiny at
224 px), so the real deployment shapes can be timed without trained weights.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch
from common import latency, report


def lat(fn, n: int) -> dict:
    return latency(fn, n, warmup=3)


def main() -> None:
    from cardid.embed import load_embedder
    from cardid.export.onnx import export_onnx, to_fp16, to_int8
    from cardid.models.artifact import load_model_dir, save_model_dir
    from cardid.models.students import create_student

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model")
    ap.add_argument("--preset", help="random-init student preset instead of --model")
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--json")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        if a.preset:
            m, pp = create_student(a.preset, 768, pretrained=False)
            save_model_dir(m.eval(), d / "src", name=a.preset, kind="student", preprocess=pp, pooling="avg")
            src = d / "src"
        else:
            src = Path(a.model)
        model, meta = load_model_dir(src)
        fp32 = export_onnx(model, meta, d / "m.onnx")
        torch_emb = load_embedder(src, "cpu")
        pp = torch_emb.preprocess
        rng = np.random.default_rng(0)
        calib = rng.normal(size=(32, 3, pp.height, pp.width)).astype(np.float32)
        paths = {
            "fp32": fp32,
            "fp16": to_fp16(fp32, d / "h.onnx"),
            "int8": to_int8(fp32, d / "q.onnx", calib),
        }
        one = rng.normal(size=(1, 3, pp.height, pp.width)).astype(np.float32)
        b64 = rng.normal(size=(64, 3, pp.height, pp.width)).astype(np.float32)
        res = {"model": meta.get("name"), "input": [pp.height, pp.width], "threads": a.threads}
        res["pytorch"] = {
            "one": lat(lambda: torch_emb.embed_batch(one), a.n),
            "batch64_img_s": 64
            / (lat(lambda: torch_emb.embed_batch(b64), max(3, a.n // 10))["p50_ms"] / 1e3),
        }
        for name, p in paths.items():
            e = load_embedder(p)
            res[name] = {
                "file_mib": round(p.stat().st_size / 2**20, 2),
                "one": lat(lambda e=e: e.embed_batch(one), a.n),
                "batch64_img_s": 64
                / (lat(lambda e=e: e.embed_batch(b64), max(3, a.n // 10))["p50_ms"] / 1e3),
            }
    report(res, a.json)


if __name__ == "__main__":
    main()
