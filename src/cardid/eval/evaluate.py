"""Evaluate any Embedder as deployed: gallery of clean scans, camera photos as queries.

Every report carries the perceptual-hash baseline on the same gallery and queries, the seed's
leave-one-out protocol for comparison, and collapse diagnostics of the gallery embeddings.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import numpy as np

from cardid.catalog.records import Catalog
from cardid.embed import Embedder
from cardid.eval.baselines import phash_vectors
from cardid.eval.queries import QuerySet
from cardid.eval.retrieval import collapse_diagnostics, loo_nn_accuracy, retrieval_metrics
from cardid.images import load_rgb

log = logging.getLogger(__name__)


def _gallery_hashes(catalog: Catalog) -> np.ndarray:
    return phash_vectors(catalog.load_image(c) for c in catalog.class_index.idx_to_class)


def evaluate(
    embedder: Embedder,
    gallery: Catalog,
    queries: Sequence[np.ndarray] | QuerySet,
    query_ids: Sequence[str] | None = None,
    baseline: bool = True,
    gallery_emb: np.ndarray | None = None,
    workers: int = 0,
    progress: Callable[[int], None] | None = None,
) -> dict:
    """Recall@1/@5, mAP@R, leave-one-out NN accuracy and collapse diagnostics (+ pHash baseline).

    ``queries`` is a :class:`QuerySet` (images loaded from disk) or in-memory RGB images with
    ``query_ids``. Queries of cards missing from the gallery are left out and counted.
    """
    dropped = 0
    if isinstance(queries, QuerySet):
        queries, dropped = queries.restrict_to(gallery)
        q_ids, q_items, load = queries.card_ids, queries.paths, load_rgb
    else:
        q_ids, q_items, load = list(query_ids or []), list(queries), None
    c2i = gallery.class_index.class_to_idx
    g_labels = np.arange(len(gallery))
    q_labels = np.array([c2i[c] for c in q_ids])
    gallery.require_images()
    if gallery_emb is None:
        gallery_emb = embedder.embed(
            gallery.class_index.idx_to_class, load=gallery.load_image, workers=workers, progress=progress
        )
    q_emb = embedder.embed(q_items, load=load, workers=workers, progress=progress)
    report = {
        "model": retrieval_metrics(q_emb, q_labels, gallery_emb, g_labels),
        "collapse": collapse_diagnostics(gallery_emb),
        "gallery": len(gallery),
        "queries_not_in_gallery": dropped,
    }
    if len(q_labels) > 1:
        report["model"]["loo_nn_acc"] = loo_nn_accuracy(q_emb, q_labels)
    if baseline:
        g_hash = _gallery_hashes(gallery)
        q_hash = phash_vectors(load(x) if load else x for x in q_items)
        report["phash"] = retrieval_metrics(q_hash, q_labels, g_hash, g_labels)
    return report


def format_report(report: dict) -> str:
    rows = [("model", report["model"])] + ([("phash", report["phash"])] if "phash" in report else [])
    lines = [f"{'':<8}{'R@1':>8}{'R@5':>8}{'mAP@R':>8}{'queries':>9}"]
    for name, m in rows:
        lines.append(
            f"{name:<8}{m['recall@1']:>8.3f}{m['recall@5']:>8.3f}{m['map@r']:>8.3f}{m['queries']:>9d}"
        )
    c = report["collapse"]
    lines.append(
        f"gallery {report['gallery']} cards; mean off-diagonal cosine {c['mean_offdiag_cos']:.3f}, "
        f"effective rank {c['effective_rank']:.1f}; chance R@1 {1 / max(report['gallery'], 1):.4f}"
    )
    return "\n".join(lines)
