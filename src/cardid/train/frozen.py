"""A frozen pretrained embedder: packaged weights + layout-keeping pooling + a fitted mean, no training.

``cardid train frozen --backbone opennsfw --catalog CAT --out DIR`` embeds every reference scan of
the catalog with the frozen backbone, subtracts their mean from every embedding (the common
component of all cards) and writes an ordinary model directory (``kind: frozen``,
``head: center``): DB build, recognition, evaluation and export use it like any trained model.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from cardid.catalog.records import Catalog
from cardid.embed import TorchEmbedder
from cardid.errors import CardIDError
from cardid.eval.retrieval import collapse_diagnostics
from cardid.models.artifact import save_model_dir
from cardid.models.backbones import create_backbone, fit_preprocess
from cardid.models.model import EmbeddingModel
from cardid.preprocess import Preprocess, get_preset

log = logging.getLogger(__name__)


def build_frozen(
    catalog: str | Path | Catalog,
    out: str | Path,
    backbone: str = "opennsfw",
    pooling: str = "gem+grid3x4",
    preprocess: str | Preprocess = "portrait160",
    stage: int | None = None,
    center: bool = True,
    batch_size: int = 32,
    progress=None,
) -> dict[str, Any]:
    """Write a frozen model directory; returns its ``model.json`` record."""
    cat = catalog if isinstance(catalog, Catalog) else Catalog.load(catalog)
    cat.require_images()
    if len(cat) == 0:
        raise CardIDError("the catalog is empty: nothing to fit the mean on")
    bb = create_backbone(
        backbone, pretrained=True, pooling=pooling, kwargs={"stage": stage} if stage is not None else None
    )
    pre = fit_preprocess(get_preset(preprocess) if isinstance(preprocess, str) else preprocess, bb)
    model = EmbeddingModel(bb, head="center").eval()
    t0 = time.perf_counter()
    emb = TorchEmbedder(model, pre, batch_size=batch_size)
    ids = cat.ids
    raw = emb.embed(ids, load=cat.load_image, progress=progress)  # mean is still 0: raw pooled features
    if center:
        with torch.no_grad():
            model.proj.mean.copy_(torch.from_numpy(raw.mean(0)))
    g = F.normalize(torch.from_numpy(raw) - model.proj.mean, dim=1).numpy()
    diag = collapse_diagnostics(np.ascontiguousarray(g))
    log.info(
        "frozen %s: %d scans in %.1f s, mean off-diagonal cosine %.3f",
        backbone,
        len(ids),
        time.perf_counter() - t0,
        diag["mean_offdiag_cos"],
    )
    return save_model_dir(
        model,
        out,
        name="frozen",
        kind="frozen",
        preprocess=pre,
        pooling=pooling,
        classes=ids,
        metrics={"gallery": diag},
        config={
            "backbone": backbone,
            "pooling": pooling,
            "stage": bb.spec.config.get("stage"),
            "center": center,
            "fitted_on": {"catalog": str(cat.root), "cards": len(ids)},
        },
    )
