"""Reference DB performance: search latency, load time, memory; one crop end to end.

    python benchmarks/db.py --rows 17592 --dim 768 [--db DIR --model DIR --crop IMG] --json benchmarks/results/db_cpu.json

Search: p50/p99 per query and per batch of 64, exact (float32 matrix product over embeddings.npy, and
usearch's own brute force) vs HNSW, for f32/f16/i8 indexes; HNSW recall@5 against exact.
With ``--db/--model/--crop``: decode → preprocess → embed → search (→ verification of the
shortlist) for one pre-cropped photo.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
from common import latency, report


def lat(fn, queries, n) -> dict:
    return latency(fn, n, inputs=queries)


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def search_bench(rows: int, dim: int, n: int, emb: np.ndarray | None = None) -> dict:
    from cardid.db.store import usearch_index
    from cardid.search import topk_cosine

    Index = usearch_index()  # imports onnxruntime first (see cardid.db.store)

    rng = np.random.default_rng(0)
    g = emb if emb is not None else rng.normal(size=(rows, dim)).astype(np.float32)
    g /= np.linalg.norm(g, axis=1, keepdims=True)
    q = g[rng.integers(0, len(g), 256)] + 0.3 * rng.normal(size=(256, g.shape[1])).astype(
        np.float32
    ) / np.sqrt(g.shape[1])
    q = (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)
    batches = [q[i : i + 64] for i in range(0, 256, 64)]
    truth = topk_cosine(q, g, 5)[1]
    out = {
        "rows": len(g),
        "dim": g.shape[1],
        "exact_blas": {
            "one": lat(lambda v: topk_cosine(v[None], g, 5), q, n),
            "batch64": lat(lambda b: topk_cosine(b, g, 5), batches, max(8, n // 20)),
        },
    }
    for dt in ("f32", "f16", "i8"):
        idx = Index(ndim=g.shape[1], metric="cos", dtype=dt)
        t = time.perf_counter()
        idx.add(np.arange(len(g)), g)
        build = time.perf_counter() - t
        with tempfile.TemporaryDirectory() as d:
            p = str(Path(d) / "x.usearch")
            idx.save(p)
            size = Path(p).stat().st_size
            t = time.perf_counter()
            Index.restore(p, view=True)
            load = time.perf_counter() - t
        found = np.asarray(idx.search(q, 5).keys)
        recall = float(np.mean([len(set(a) & set(b)) / 5 for a, b in zip(found, truth, strict=True)]))
        out[dt] = {
            "build_s": round(build, 2),
            "file_mib": round(size / 2**20, 1),
            "load_view_ms": round(load * 1e3, 2),
            "hnsw_recall@5_vs_exact": recall,
            "hnsw_one": lat(lambda v, i=idx: i.search(v, 5), q, n),
            "hnsw_batch64": lat(lambda b, i=idx: i.search(b, 5), batches, max(8, n // 20)),
            "usearch_exact_one": lat(lambda v, i=idx: i.search(v, 5, exact=True), q, n),
        }
    return out


def end_to_end(db_dir: str, model: str, crop: str, n: int) -> dict:
    from cardid.db.store import CardDB
    from cardid.decision.match import MatchConfig, Matcher
    from cardid.embed import load_embedder
    from cardid.images import load_rgb

    t = time.perf_counter()
    emb = load_embedder(model, "cpu")
    db = CardDB.load(db_dir, emb)
    load_s = time.perf_counter() - t
    out = {"db": db_dir, "cards": len(db), "model": model, "db_and_model_load_s": round(load_s, 2)}

    def embed_search():
        im = load_rgb(crop)
        db.search(emb.embed([im]), 5)

    for name, verify in (("embed_search", False), ("with_verification_top20", True)):
        m = Matcher(db, emb, MatchConfig(verify=verify))

        def full(m=m):
            im = load_rgb(crop)
            m.decide(m.prepare([im])[0])

        out[name] = lat(lambda _, f=full: f(), [0], n)
    out["decode_embed_search"] = lat(lambda _: embed_search(), [0], n)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=17592)
    ap.add_argument("--dim", type=int, default=768)
    ap.add_argument("--n", type=int, default=200, help="timed single queries per measurement")
    ap.add_argument("--db")
    ap.add_argument("--model")
    ap.add_argument("--crop")
    ap.add_argument("--json")
    a = ap.parse_args()
    result = {"random_unit_vectors": search_bench(a.rows, a.dim, a.n)}
    if a.db:
        emb = np.load(Path(a.db) / "embeddings.npy")
        result["real_embeddings"] = search_bench(len(emb), emb.shape[1], a.n, emb.copy())
    if a.db and a.model and a.crop:
        result["end_to_end"] = end_to_end(a.db, a.model, a.crop, max(10, a.n // 10))
    result["max_rss_mib"] = round(rss_mib(), 1)
    report(result, a.json)


if __name__ == "__main__":
    main()
