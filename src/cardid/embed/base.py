"""The :class:`Embedder` protocol and its one batching loop: NumPy only (no torch), so the runtime
that recognises with an ONNX export never imports a training library."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from cardid.preprocess import Preprocess


@runtime_checkable
class Embedder(Protocol):
    preprocess: Preprocess
    dim: int
    #: Short content hash of the weights: what a reference DB records and checks on every query.
    identity: str
    #: What the artefact is (name, kind, backbone, full weights hash, path); recorded in a DB.
    info: dict

    def embed_batch(self, batch: np.ndarray) -> np.ndarray:
        """Preprocessed float32 (N, 3, H, W) → float32 (N, dim), rows L2-normalised."""

    def embed(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """RGB uint8 images (any size) → float32 (N, dim)."""


class _Images:
    """Items → preprocessed arrays, by index."""

    def __init__(self, items: Sequence, preprocess: Preprocess, load: Callable | None):
        self.items, self.preprocess, self.load = items, preprocess, load

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> np.ndarray:
        item = self.items[i]
        return self.preprocess(self.load(item) if self.load else item)


def _batches(images: _Images, size: int, workers: int):
    """Stacked batches in order; with ``workers`` > 0 each batch is decoded and preprocessed by
    that many threads (the decoders and OpenCV release the GIL) while the previous one embeds."""
    spans = [range(i, min(i + size, len(images))) for i in range(0, len(images), size)]
    if workers <= 0:
        for span in spans:
            yield np.stack([images[j] for j in span])
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(workers, thread_name_prefix="cardid-preprocess") as pool:
        ahead = None
        for span in spans:
            batch = list(pool.map(images.__getitem__, span))
            if ahead is not None:
                yield ahead
            ahead = np.stack(batch)
        if ahead is not None:
            yield ahead


class BatchedEmbedder:
    """What every Embedder shares: :meth:`embed` through :func:`embed_in_batches`, given
    ``preprocess``, ``dim``, ``batch_size`` and :meth:`embed_batch`."""

    def embed(
        self,
        images: Sequence,
        load: Callable | None = None,
        workers: int = 0,
        progress: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """Embed images (arrays, or items turned into arrays by ``load``, e.g. paths) in batches;
        ``workers`` > 0 decodes and preprocesses in that many threads."""
        return embed_in_batches(self, images, load, workers, progress)


def embed_in_batches(
    embedder: Embedder,
    images: Sequence,
    load: Callable | None = None,
    workers: int = 0,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """The one batching loop of every Embedder: decode + preprocess (in ``workers`` threads when
    > 0), then ``embedder.embed_batch`` per ``embedder.batch_size`` images."""
    out = [np.zeros((0, embedder.dim), np.float32)]
    for batch in _batches(_Images(images, embedder.preprocess, load), embedder.batch_size, workers):
        out.append(embedder.embed_batch(batch))
        if progress:
            progress(len(batch))
    return np.concatenate(out)
