"""Perceptual hashes and the duplicate report (two ids, near-identical image)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from cardid.catalog.records import Catalog
from cardid.errors import ImageError
from cardid.io import write_json_atomic

DUPLICATES_FILE = "duplicates.json"


def phash(rgb: np.ndarray) -> np.uint64:
    """64-bit DCT perceptual hash: 32×32 grey, 8×8 lowest frequencies (DC excluded from the median)."""
    return phash_grey(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))


def phash_grey(grey: np.ndarray) -> np.uint64:
    """:func:`phash` of a greyscale image."""
    small = cv2.resize(grey, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)
    low = cv2.dct(small)[:8, :8].flatten()
    bits = low > np.median(low[1:])
    return np.packbits(bits).view(">u8")[0].astype(np.uint64)


def hamming_pairs(hashes: np.ndarray, max_distance: int, chunk: int = 1024) -> list[tuple[int, int, int]]:
    """All pairs (i < j) with Hamming distance ≤ ``max_distance``; memory bounded by ``chunk × N``."""
    h = np.asarray(hashes, dtype=np.uint64)
    out: list[tuple[int, int, int]] = []
    for s in range(0, len(h), chunk):
        d = np.bitwise_count(h[s : s + chunk, None] ^ h[None, :])
        ii, jj = np.nonzero(d <= max_distance)
        for i, j in zip(ii + s, jj, strict=True):
            if i < j:
                out.append((int(i), int(j), int(d[i - s, j])))
    return out


@dataclass
class DuplicateReport:
    pairs: list[dict]
    unreadable: list[dict]

    def to_dict(self) -> dict:
        return {"near_identical": self.pairs, "unreadable": self.unreadable}


def find_duplicates(
    catalog: Catalog,
    max_distance: int = 4,
    progress: Callable[[int], None] | None = None,
) -> DuplicateReport:
    """Hash every available scan and report id pairs whose images are near-identical.

    Reprints with identical art and frame are real and not an error: they are reported so that
    retrieval and the DB can treat them as ambiguous rather than as a labelling mistake.
    """
    ids, hashes, unreadable = [], [], []
    for rec in catalog:
        try:
            hashes.append(phash(catalog.load_image(rec.id)))
            ids.append(rec.id)
        except ImageError as e:
            unreadable.append({"id": rec.id, "error": str(e)})
        if progress:
            progress(1)
    pairs = [
        {"a": ids[i], "b": ids[j], "hamming": d}
        for i, j, d in hamming_pairs(np.array(hashes, dtype=np.uint64), max_distance)
    ]
    return DuplicateReport(pairs, unreadable)


def write_duplicate_report(catalog: Catalog, report: DuplicateReport, path: str | Path | None = None) -> Path:
    path = Path(path) if path else catalog.root / DUPLICATES_FILE
    write_json_atomic(path, report.to_dict())
    return path
