"""Training data for the loops: folder layout or online synthesis, sampled per optimizer step.

Batches are a pure function of (seed, step, rank): a resumed run sees exactly the batches an
uninterrupted run would have seen, with no sampler state to checkpoint.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from cardid.catalog.records import CLASS_INDEX_FILE, METADATA_FILE, Catalog
from cardid.data.datasets import FolderDataset, OnlineViewDataset
from cardid.errors import CardIDError
from cardid.eval.queries import QuerySet, load_queries
from cardid.preprocess import Preprocess
from cardid.synth.settings import PhotoSimConfig
from cardid.synth.views import ViewRenderer

ONLINE_VIEWS = 1 << 20  # distinct views per card addressable by the online dataset


class StepBatches:
    """Batch sampler: step ``s`` draws ``global_batch`` indices from ``rng([seed, s])``; rank r takes
    its contiguous slice. Iterates steps ``start .. total-1``."""

    def __init__(
        self, n: int, global_batch: int, seed: int, start: int, total: int, rank: int = 0, world: int = 1
    ):
        if global_batch % world:
            raise CardIDError(f"global batch {global_batch} is not divisible by {world} processes")
        self.n, self.gb, self.seed, self.start, self.total = n, global_batch, seed, start, total
        self.per_rank, self.rank = global_batch // world, rank

    def __len__(self) -> int:
        return max(0, self.total - self.start)

    def __iter__(self) -> Iterator[list[int]]:
        for step in range(self.start, self.total):
            idx = np.random.default_rng([self.seed, step]).integers(0, self.n, self.gb)
            yield idx[self.rank * self.per_rank : (self.rank + 1) * self.per_rank].tolist()


@dataclass
class TrainingData:
    """What a training loop needs: the train dataset, the gallery catalog and the eval queries."""

    train: Dataset
    num_items: int
    gallery: Catalog
    mode: str  # "online" or "folder"
    val_items: list
    val_ids: list[str]
    val_loader: object | None  # callable turning a val item into an RGB image (None: items are paths)


class ValView:
    """Picklable loader of an online validation view ``(card_id, view)``."""

    def __init__(self, renderer: ViewRenderer):
        self.renderer = renderer

    def __call__(self, item: tuple[str, int]) -> np.ndarray:
        return self.renderer.view(item[0], "val", item[1])


def load_training_data(
    train: str | Path,
    preprocess: Preprocess,
    photo: PhotoSimConfig,
    seed: int,
    val: str | Path | None = None,
    val_views: int = 2,
) -> TrainingData:
    """``train`` is a folder-layout dataset (``train/``, ``val/``, ``gallery/``) or a catalog (online
    synthesis of camera views). ``val`` overrides the queries: a CSV of real photos or a dataset."""
    root = Path(train)
    if not root.is_dir():
        raise CardIDError(f"training data not found: {root}")
    if (root / "train").is_dir():
        ds = FolderDataset(root, "train", preprocess)
        gallery = Catalog.load(root)
        mode = "folder"
    elif (root / METADATA_FILE).is_file():
        gallery = Catalog.load(root)
        ds = OnlineViewDataset(gallery, preprocess, views_per_card=ONLINE_VIEWS, cfg=photo, seed=seed)
        mode = "online"
    else:
        raise CardIDError(
            f"{root} is neither a dataset (train/ val/ gallery/) nor a catalog ({METADATA_FILE})"
        )
    classes = ds.class_index.idx_to_class if mode == "folder" else gallery.class_index.idx_to_class
    missing = [c for c in classes if c not in gallery]
    if missing:
        raise CardIDError(
            f"the gallery in {root} lacks {len(missing)} card(s) of {CLASS_INDEX_FILE}, e.g. {missing[0]}"
        )
    gallery.require_images()
    if val is not None:
        q: QuerySet = load_queries(val)
        q, _ = q.restrict_to(gallery)
        items, ids, loader = list(q.paths), q.card_ids, None
    elif mode == "folder" and (root / "val").is_dir():
        q = load_queries(root, "val")
        items, ids, loader = list(q.paths), q.card_ids, None
    else:
        ids = [c for c in gallery.class_index.idx_to_class for _ in range(val_views)]
        items = [(c, v) for c in gallery.class_index.idx_to_class for v in range(val_views)]
        loader = ValView(ViewRenderer(gallery, photo, seed))
    return TrainingData(ds, len(ds), gallery, mode, items, ids, loader)


class Indexed(Dataset):
    """Items of a dataset at the given base indices, returned with their position (the cache row)."""

    def __init__(self, base: Dataset, indices: list[int]):
        self.base, self.indices = base, indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        views, label = self.base[self.indices[i]]
        return views, label, i


class KeptViews(Dataset):
    """Views rendered once and kept (uint8, one tensor per contract), normalised when drawn: item
    ``i`` is exactly ``Indexed(MultiContract(base, contracts), indices)[i]``, without rendering."""

    def __init__(self, kept: dict[str, torch.Tensor], labels: torch.Tensor, contracts: dict[str, Preprocess]):
        if set(kept) != set(contracts) or any(len(v) != len(labels) for v in kept.values()):
            raise CardIDError("kept views: one uint8 tensor per contract, one row per label")
        self.kept, self.labels, self.contracts = kept, labels, contracts

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        views = {k: torch.from_numpy(self.contracts[k].normalize(v[i].numpy())) for k, v in self.kept.items()}
        return views, int(self.labels[i]), i


def kept_views_gib(contracts: dict[str, Preprocess], n: int) -> float:
    """Memory that ``n`` views kept as :class:`KeptViews` take, in GiB."""
    return n * sum(c.height * c.width * 3 for c in contracts.values()) / 2**30


def cache_indices(data, k: int) -> list[int]:
    """Base dataset indices of the cached views: K fixed online views per card, or every folder image."""
    if data.mode == "folder":
        return list(range(data.num_items))
    return [c * ONLINE_VIEWS + v for c in range(len(data.gallery)) for v in range(k)]
