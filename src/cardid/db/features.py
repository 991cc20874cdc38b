"""The gallery's verification features, computed once when a DB is built and stored beside it:
whole-card keypoints and descriptors stored flat with row offsets (memory-mapped on load), bottom
strips, perceptual hashes and art-box keypoints (:mod:`cardid.db.verify` computes and matches them)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cardid.db.verify import Features, VerifyConfig, art_features, extract
from cardid.errors import CardIDError, DBError

FEATURE_FILES = ("points.npy", "descriptors.npy", "offsets.npy", "strips.npy", "hashes.npy")
#: Art-box keypoints (optional: DBs built before them have none, and art is then not compared).
ART_FILES = ("art_points.npy", "art_descriptors.npy", "art_offsets.npy")


@dataclass
class KeypointTable:
    """Keypoints of many images stored flat, with row offsets (memory-mappable): the whole cards'
    (verification) and the art boxes' (same art or not) alike."""

    points: np.ndarray
    descriptors: np.ndarray
    offsets: np.ndarray

    def span(self, row: int) -> tuple[np.ndarray, np.ndarray]:
        a, b = int(self.offsets[row]), int(self.offsets[row + 1])
        return self.points[a:b], self.descriptors[a:b]

    def __getitem__(self, row: int) -> Features:
        pts, desc = self.span(row)
        return Features(np.asarray(pts), np.asarray(desc), np.uint64(0))

    @classmethod
    def of(cls, feats: list[Features]) -> KeypointTable:
        offsets = np.concatenate([[0], np.cumsum([len(f.points) for f in feats])]).astype(np.int64)
        return cls(
            np.concatenate([f.points for f in feats] or [np.zeros((0, 2), np.float32)]),
            np.concatenate([f.descriptors for f in feats] or [np.zeros((0, 32), np.uint8)]),
            offsets,
        )

    def concat(self, other: KeypointTable) -> KeypointTable:
        return KeypointTable(
            np.concatenate([self.points, other.points]),
            np.concatenate([self.descriptors, other.descriptors]),
            np.concatenate([self.offsets, other.offsets[1:] + self.offsets[-1]]),
        )

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.points, self.descriptors, self.offsets

    def consistent(self, count: int) -> bool:
        off = self.offsets
        return (
            len(off) == count + 1
            and off[0] == 0
            and off[-1] == len(self.points) == len(self.descriptors)
            and not np.any(np.diff(off) < 0)
        )


class GalleryFeatures:
    """Per-card keypoints and descriptors stored flat with row offsets (memory-mappable), bottom
    strips and pHashes. Row ``i`` belongs to DB row ``i``."""

    def __init__(
        self,
        points: np.ndarray,
        descriptors: np.ndarray,
        offsets: np.ndarray,
        strips: np.ndarray,
        hashes: np.ndarray,
        cfg: VerifyConfig,
        art: KeypointTable | None = None,
    ):
        self.whole = KeypointTable(points, descriptors, offsets)  # the whole card's, for verification
        self.strips, self.hashes, self.cfg = strips, hashes, cfg
        self.art = art  # art-box keypoints per row (None: a DB from before them)

    def __len__(self) -> int:
        return len(self.whole.offsets) - 1

    def keypoints(self, row: int) -> tuple[np.ndarray, np.ndarray]:
        return self.whole.span(row)

    @classmethod
    def compute(
        cls,
        items: Iterable,
        cfg: VerifyConfig,
        progress: Callable[[int], None] | None = None,
        load: Callable[[Any], np.ndarray] | None = None,
        workers: int = 0,
    ) -> GalleryFeatures:
        """Features of every image, or of every item ``load`` turns into one (a card id, a path).

        With ``load`` and ``workers`` > 1, decoding and extraction run in that many threads (the
        decoders and OpenCV release the GIL); the order of ``items`` is kept, and at most
        ``workers`` images are decoded at a time."""

        def one(item) -> tuple[Features, Features]:
            rgb = load(item) if load else item
            return extract(rgb, cfg), art_features(rgb)

        feats, arts = [], []
        threaded = load is not None and workers > 1
        with ThreadPoolExecutor(workers) if threaded else contextlib.nullcontext() as pool:
            for f, a in (pool.map if threaded else map)(one, items):
                feats.append(f)
                arts.append(a)
                if progress:
                    progress(1)
        return cls.from_features(feats, cfg, arts)

    @classmethod
    def from_features(
        cls, feats: list[Features], cfg: VerifyConfig, arts: list[Features] | None = None
    ) -> GalleryFeatures:
        sh = cfg.strip_shape
        return cls(
            *KeypointTable.of(feats).arrays(),
            np.stack([f.strip for f in feats]) if feats else np.zeros((0, *sh), np.uint8),
            np.array([f.hash for f in feats], np.uint64),
            cfg,
            KeypointTable.of(arts) if arts is not None else None,
        )

    def concat(self, other: GalleryFeatures) -> GalleryFeatures:
        if other.cfg != self.cfg:
            raise CardIDError("cannot append gallery features computed with a different VerifyConfig")
        return GalleryFeatures(
            *self.whole.concat(other.whole).arrays(),
            np.concatenate([self.strips, other.strips]),
            np.concatenate([self.hashes, other.hashes]),
            self.cfg,
            self.art.concat(other.art) if self.art is not None and other.art is not None else None,
        )

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for name, arr in zip(FEATURE_FILES, self._arrays(), strict=True):
            np.save(folder / name, arr)
        if self.art is not None:
            for name, arr in zip(ART_FILES, self.art.arrays(), strict=True):
                np.save(folder / name, arr)

    def files(self) -> tuple[str, ...]:
        """The files :meth:`save` writes."""
        return FEATURE_FILES + (ART_FILES if self.art is not None else ())

    def materialised(self) -> GalleryFeatures:
        """An in-memory copy (the loaded arrays may be views of files about to be replaced)."""
        art = KeypointTable(*(np.array(a) for a in self.art.arrays())) if self.art is not None else None
        return GalleryFeatures(*(np.array(a) for a in self._arrays()), self.cfg, art)

    def _arrays(self) -> tuple[np.ndarray, ...]:
        return (*self.whole.arrays(), self.strips, self.hashes)

    @classmethod
    def load(cls, folder: Path, cfg: VerifyConfig, count: int) -> GalleryFeatures:
        arrays = []
        for name in FEATURE_FILES:
            try:
                arrays.append(np.load(folder / name, mmap_mode="r"))
            except (OSError, ValueError) as e:
                raise DBError(f"verification features unreadable: {folder / name} ({e})") from e
        art = None
        if all((folder / n).is_file() for n in ART_FILES):
            try:
                art = KeypointTable(*(np.load(folder / n, mmap_mode="r") for n in ART_FILES))
            except (OSError, ValueError) as e:
                raise DBError(f"art features unreadable in {folder} ({e})") from e
        gf = cls(*arrays, cfg, art)
        _, _, off, strips, hashes = arrays
        problems = []
        if len(off) != count + 1 or len(strips) != count or len(hashes) != count:
            problems.append(f"rows: offsets {len(off) - 1}, strips {len(strips)}, hashes {len(hashes)}")
        elif not gf.whole.consistent(count):
            problems.append("keypoint offsets do not match the keypoint arrays")
        if art is not None and not art.consistent(count):
            problems.append("art keypoint offsets do not match the art keypoints or the rows")
        if strips.shape[1:] != cfg.strip_shape:
            problems.append(f"strip shape {strips.shape[1:]} != {cfg.strip_shape}")
        if problems:
            raise DBError(
                f"verification features in {folder} are inconsistent with the DB ({count} rows): "
                + "; ".join(problems)
            )
        return gf
