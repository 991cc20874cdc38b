"""Query sets for retrieval evaluation: a labelled CSV of photos, or a dataset's view folders."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from cardid.catalog.ids import card_id_from_stem
from cardid.catalog.records import Catalog
from cardid.data.photoset import load_photo_set
from cardid.errors import CardIDError
from cardid.images import IMAGE_EXTENSIONS

log = logging.getLogger(__name__)


@dataclass
class QuerySet:
    paths: list[Path]
    card_ids: list[str]
    source: str

    def __len__(self) -> int:
        return len(self.paths)

    def restrict_to(self, catalog: Catalog) -> tuple[QuerySet, int]:
        """Keep the queries whose card is in the gallery; return how many were dropped."""
        keep = [i for i, c in enumerate(self.card_ids) if c in catalog]
        dropped = len(self) - len(keep)
        if dropped:
            missing = sorted({c for c in self.card_ids if c not in catalog})
            log.warning(
                "%d queries show cards that are not in the gallery (%s…): left out of recall",
                dropped,
                ", ".join(missing[:3]),
            )
        return QuerySet([self.paths[i] for i in keep], [self.card_ids[i] for i in keep], self.source), dropped


def load_queries(spec: str | Path, split: str = "val") -> QuerySet:
    """``spec`` is a CSV with ``file`` and ``card_id`` columns (paths relative to the CSV), a dataset
    directory (its ``<split>/<card>/*.png``), or a directory of ``<card>/*.png`` class folders."""
    spec = Path(spec)
    if spec.is_file():
        photos = load_photo_set(spec)  # the one loader of labelled photos, with its checks
        return QuerySet(photos.paths, photos.card_ids, str(spec))
    if not spec.is_dir():
        raise CardIDError(f"queries not found: {spec} (a CSV or a directory)")
    root = spec / split if (spec / split).is_dir() else spec
    paths, ids = [], []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        for f in sorted(folder.iterdir()):
            if f.suffix.lower() in IMAGE_EXTENSIONS:
                paths.append(f)
                ids.append(card_id_from_stem(folder.name))
    if not paths:
        raise CardIDError(f"no query images in class folders under {root}")
    return QuerySet(paths, ids, str(root))
