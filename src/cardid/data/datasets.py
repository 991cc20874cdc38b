"""PyTorch datasets: camera views rendered on the fly, or read from the folder layout.

Both return ``(tensor float32 (3, H, W), class index)`` through the same
:class:`~cardid.preprocess.Preprocess`, and the same view is the same tensor either way.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from cardid.catalog.records import Catalog
from cardid.data.layout import read_split
from cardid.images import load_rgb
from cardid.preprocess import Preprocess
from cardid.synth.settings import PRESETS, PhotoSimConfig
from cardid.synth.views import ViewRenderer


class OnlineViewDataset(Dataset):
    """``views_per_card`` fresh camera views of every card per epoch, rendered from the catalog.

    Item ``i`` is view ``i % views_per_card`` of card ``i // views_per_card``; call
    :meth:`set_epoch` to get new views (infinite variety, still reproducible for a seed).
    """

    def __init__(
        self,
        catalog: Catalog,
        preprocess: Preprocess,
        views_per_card: int = 8,
        split: str = "train",
        cfg: PhotoSimConfig = PRESETS["default"],
        seed: int = 0,
    ):
        catalog.require_images()
        self.catalog, self.preprocess, self.views_per_card, self.split = (
            catalog,
            preprocess,
            views_per_card,
            split,
        )
        self.renderer = ViewRenderer(catalog, cfg, seed)
        self.ids = catalog.class_index.idx_to_class
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.ids) * self.views_per_card

    def view(self, index: int) -> tuple[np.ndarray, int]:
        label, v = divmod(index, self.views_per_card)
        return self.renderer.view(self.ids[label], self.split, v, self.epoch), label

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        img, label = self.view(index)
        return torch.from_numpy(self.preprocess(img)), label


class FolderDataset(Dataset):
    """A split of the folder layout (``root/<split>/<card>/*.png``), labels from ``class_index.json``."""

    def __init__(self, root: str | Path, split: str, preprocess: Preprocess):
        self.root, self.split, self.preprocess = Path(root), split, preprocess
        self.items, self.class_index = read_split(root, split)

    def __len__(self) -> int:
        return len(self.items)

    def view(self, index: int) -> tuple[np.ndarray, int]:
        path, label = self.items[index]
        return load_rgb(path), label

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        img, label = self.view(index)
        return torch.from_numpy(self.preprocess(img)), label


class GalleryDataset(Dataset):
    """The clean scans of a catalog, one per card, in class-index order."""

    def __init__(self, catalog: Catalog, preprocess: Preprocess):
        catalog.require_images()
        self.catalog, self.preprocess = catalog, preprocess
        self.ids = catalog.class_index.idx_to_class

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return torch.from_numpy(self.preprocess(self.catalog.load_image(self.ids[index]))), index


class MultiContract(Dataset):
    """The same view under several preprocessing contracts: ``({name: tensor}, label)``.

    Distillation feeds one augmented view to the teacher and to every student, each at its own
    input size and normalisation.
    """

    def __init__(self, base: OnlineViewDataset | FolderDataset, contracts: dict[str, Preprocess]):
        self.base, self.contracts = base, contracts

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> tuple[dict[str, torch.Tensor], int]:
        img, label = self.base.view(index)
        return {k: torch.from_numpy(p(img)) for k, p in self.contracts.items()}, label
