"""Parity: an export is done only when it gives the same answers as the model it came from.

Both embedders see the same images (clean gallery scans and simulated camera crops of them):
max abs difference, mean cosine between their embeddings, top-1 agreement of photo → gallery
retrieval, and each one's Recall@1. Tolerances depend on the precision.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cardid.catalog.records import Catalog
from cardid.embed import Embedder
from cardid.errors import CardIDError

#: What each precision must reach (None: reported, not enforced). fp32 must give the same answers;
#: fp16/int8 must stay numerically close, and their Recall@1 drop is reported (on a few dozen
#: queries one flipped near-tie is already a 3-point drop, too noisy to gate on by default).
TOLERANCES = {
    "fp32": {"max_abs": 1e-4, "min_cos": 0.99999, "min_agreement": 1.0, "max_recall_drop": None},
    "fp16": {"max_abs": None, "min_cos": 0.999, "min_agreement": None, "max_recall_drop": None},
    "int8": {"max_abs": None, "min_cos": 0.95, "min_agreement": None, "max_recall_drop": None},
}


class ParityError(CardIDError):
    """An export's outputs differ from its source model beyond the tolerance."""


@dataclass
class ParitySet:
    """Gallery scans, camera-like crops of them (with labels), and extra crops for calibration."""

    gallery: list[np.ndarray]
    gallery_ids: list[str]
    queries: list[np.ndarray]
    query_ids: list[str]

    @classmethod
    def from_catalog(cls, catalog: Catalog, cards: int = 32, seed: int = 0) -> ParitySet:
        from cardid.fit.calibrate import synthetic_queries

        ids = catalog.ids[:cards]
        q, ql = synthetic_queries(catalog, ids, seed=seed, crop_width=224)
        return cls([catalog.load_image(c) for c in ids], ids, q, ql)

    @classmethod
    def synthetic(cls, cards: int = 32, seed: int = 0) -> ParitySet:
        """Procedural cards when no catalog is at hand (the check still covers real layouts)."""
        from cardid.synth.cards import synth_cards

        with tempfile.TemporaryDirectory() as d:
            cat = synth_cards(Path(d) / "cat", n=cards, seed=seed, height=320, reprint_fraction=0.0)
            return cls.from_catalog(cat, cards, seed)


def parity(
    reference: Embedder,
    candidate: Embedder,
    data: ParitySet,
    precision: str = "fp32",
    tolerance: dict | None = None,
) -> dict:
    """Compare ``candidate`` (an export) with ``reference`` (its source) on ``data``."""
    reference.preprocess.check_same(candidate.preprocess, "export vs source model")
    g_ref, g_c = reference.embed(data.gallery), candidate.embed(data.gallery)
    q_ref, q_c = reference.embed(data.queries), candidate.embed(data.queries)
    a, b = np.concatenate([g_ref, q_ref]), np.concatenate([g_c, q_c])
    top_ref, top_c = (q_ref @ g_ref.T).argmax(1), (q_c @ g_c.T).argmax(1)
    truth = np.array([data.gallery_ids.index(c) for c in data.query_ids])
    tol = {**TOLERANCES[precision], **(tolerance or {})}
    res = {
        "precision": precision,
        "images": len(a),
        "max_abs_diff": float(np.abs(a - b).max()),
        "mean_cosine": float((a * b).sum(1).mean()),
        "min_cosine": float((a * b).sum(1).min()),
        "top1_agreement": float((top_ref == top_c).mean()),
        "recall@1_source": float((top_ref == truth).mean()),
        "recall@1_export": float((top_c == truth).mean()),
        "tolerance": tol,
    }
    res["recall@1_drop"] = res["recall@1_source"] - res["recall@1_export"]
    fails = []
    if tol["max_abs"] is not None and res["max_abs_diff"] > tol["max_abs"]:
        fails.append(f"max abs diff {res['max_abs_diff']:.2e} > {tol['max_abs']:.0e}")
    if res["mean_cosine"] < tol["min_cos"]:
        fails.append(f"mean cosine {res['mean_cosine']:.5f} < {tol['min_cos']}")
    if tol["min_agreement"] is not None and res["top1_agreement"] < tol["min_agreement"]:
        fails.append(f"top-1 agreement {res['top1_agreement']:.3f} < {tol['min_agreement']}")
    if tol["max_recall_drop"] is not None and res["recall@1_drop"] > tol["max_recall_drop"] + 1e-9:
        fails.append(f"Recall@1 drop {res['recall@1_drop']:.3f} > {tol['max_recall_drop']}")
    res["passed"], res["failures"] = not fails, fails
    return res
