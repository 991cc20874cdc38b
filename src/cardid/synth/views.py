"""Deterministic camera views of catalog cards: the one place a (card, split, view) becomes pixels.

Both the folder writer and the online dataset call :meth:`ViewRenderer.view`, so a view written
to disk and the same view rendered on the fly are the same pixels.
"""

from __future__ import annotations

import zlib

import numpy as np

from cardid.catalog.records import Catalog
from cardid.synth.photo import prepare_scan, render_crop
from cardid.synth.settings import PRESETS, PhotoSimConfig

SPLITS = {"train": 1, "val": 2, "test": 3}


def view_seed(seed: int, card_id: str, split: str, view: int, epoch: int = 0) -> list[int]:
    """Seed sequence for one view: stable across processes, catalogs and Python runs."""
    return [seed, zlib.crc32(card_id.encode()), SPLITS[split], epoch, view]


class ViewRenderer:
    """Renders rectified camera crops of a catalog's cards; scans are loaded once and cached."""

    def __init__(self, catalog: Catalog, cfg: PhotoSimConfig = PRESETS["default"], seed: int = 0):
        self.catalog, self.cfg, self.seed = catalog, cfg, seed
        self._scans: dict[str, np.ndarray] = {}

    def scan(self, card_id: str) -> np.ndarray:
        s = self._scans.get(card_id)
        if s is None:
            # views never need more than the crop height: shrink once, reuse for every view
            s = prepare_scan(self.catalog.load_image(card_id), self.cfg)
            self._scans[card_id] = s
        return s

    def view(self, card_id: str, split: str, view: int, epoch: int = 0) -> np.ndarray:
        rng = np.random.default_rng(view_seed(self.seed, card_id, split, view, epoch))
        return render_crop(self.scan(card_id), rng, self.cfg)
