"""The spec's classification layout for embedding training, plus the clean gallery.

::

    out/
      train/<card>/000.png ...   camera views (rectified crops), lossless PNG
      val/<card>/000.png ...     *new* views of the same cards (never held-out cards)
      gallery/<card>.png         the clean scan, transparency composited
      class_index.json  card_metadata.json  dataset.json  config.yaml

``<card>`` is :func:`~cardid.catalog.records.card_file_stem` of the card id.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from cardid import __version__
from cardid.catalog.ids import card_file_stem
from cardid.catalog.records import CLASS_INDEX_FILE, Catalog, ClassIndex
from cardid.config import save_config
from cardid.errors import CatalogError
from cardid.images import save_rgb
from cardid.io import atomic_dir, write_json_atomic
from cardid.synth.settings import PhotoSimConfig
from cardid.synth.views import ViewRenderer

DATASET_FILE = "dataset.json"


class EmbeddingDataConfig(BaseModel):
    """``cardid data embedding`` settings (saved as ``config.yaml`` in the dataset)."""

    model_config = ConfigDict(extra="forbid")

    train_views: int = Field(8, ge=1)
    val_views: int = Field(2, ge=0)
    seed: int = 0
    photo: PhotoSimConfig = PhotoSimConfig()


def _write_card(args: tuple[Path, Path, str, EmbeddingDataConfig]) -> str:
    root, out, card_id, cfg = args
    cat = _worker_catalog(root)
    renderer = ViewRenderer(cat, cfg.photo, cfg.seed)
    stem = card_file_stem(card_id)
    save_rgb(out / "gallery" / f"{stem}.png", cat.load_image(card_id))
    for split, n in (("train", cfg.train_views), ("val", cfg.val_views)):
        for v in range(n):
            save_rgb(out / split / stem / f"{v:03d}.png", renderer.view(card_id, split, v))
    return card_id


_CATALOGS: dict[Path, Catalog] = {}


def _worker_catalog(root: Path) -> Catalog:
    if root not in _CATALOGS:
        _CATALOGS[root] = Catalog.load(root)
    return _CATALOGS[root]


def write_embedding_dataset(
    catalog: Catalog,
    out: str | Path,
    cfg: EmbeddingDataConfig | None = None,
    workers: int = 0,
    overwrite: bool = False,
    progress: Callable[[int], None] | None = None,
) -> Path:
    """Render and write the dataset; ``workers=0`` uses every core. Atomic: all or nothing."""
    cfg = cfg or EmbeddingDataConfig()
    catalog.require_images()
    out = Path(out)
    workers = workers or (os.cpu_count() or 1)
    with atomic_dir(out, overwrite=overwrite, kind="dataset", protect=catalog.image_dirs()) as tmp:
        jobs = [(catalog.root.resolve(), tmp, cid, cfg) for cid in catalog.ids]
        if workers == 1:
            results = map(_write_card, jobs)
        else:
            pool = ProcessPoolExecutor(max_workers=workers)
            results = pool.map(_write_card, jobs, chunksize=max(1, len(jobs) // (workers * 8)))
        try:
            for _ in results:
                if progress:
                    progress(1)
        finally:
            if workers != 1:
                pool.shutdown(cancel_futures=True)
        gallery = Catalog(
            tmp, [r.model_copy(update={"image_file": f"gallery/{card_file_stem(r.id)}.png"}) for r in catalog]
        )
        gallery.save()
        save_config(cfg, tmp / "config.yaml")
        write_json_atomic(
            tmp / DATASET_FILE,
            {
                "kind": "embedding",
                "cardid_version": __version__,
                "source_catalog": str(catalog.root.resolve()),
                "num_cards": len(catalog),
                "train_views": cfg.train_views,
                "val_views": cfg.val_views,
                "crop_size": [cfg.photo.crop_height, cfg.photo.crop_width],
                "seed": cfg.seed,
                "splits": {
                    "train": "camera views",
                    "val": "new camera views of the same cards",
                    "gallery": "one clean scan per card",
                },
            },
        )
    return out


def read_split(root: str | Path, split: str) -> tuple[list[tuple[Path, int]], ClassIndex]:
    """List ``(image path, class index)`` for a split, checked against ``class_index.json``."""
    from cardid.catalog.ids import card_id_from_stem
    from cardid.images import IMAGE_EXTENSIONS

    root = Path(root)
    index = ClassIndex.load(root / CLASS_INDEX_FILE)
    split_dir = root / split
    if not split_dir.is_dir():
        raise CatalogError(f"split folder not found: {split_dir}")
    c2i = index.class_to_idx
    folders = {card_id_from_stem(p.name): p for p in split_dir.iterdir() if p.is_dir()}
    unknown = sorted(set(folders) - set(c2i))
    if unknown:
        raise CatalogError(f"class folder {folders[unknown[0]]} is not in {root / CLASS_INDEX_FILE}")
    missing = [c for c in index.idx_to_class if c not in folders]
    if missing:
        raise CatalogError(
            f"{len(missing)} class folder(s) missing in {split_dir}, e.g. {split_dir / card_file_stem(missing[0])}"
        )
    items = []
    for cid in index.idx_to_class:
        files = sorted(p for p in folders[cid].iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
        if not files:
            raise CatalogError(f"class folder has no images: {folders[cid]}")
        items += [(p, c2i[cid]) for p in files]
    return items, index
