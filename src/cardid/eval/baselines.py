"""Classical baselines that every learned number is reported beside."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from cardid.catalog.dedupe import phash


def phash_vectors(images: Iterable[np.ndarray]) -> np.ndarray:
    """64-bit DCT perceptual hashes as ±1/8 vectors: their dot product is 1 − 2·hamming/64, so
    ranking by cosine is ranking by Hamming distance and the same top-k code serves both.
    ``images`` may be a generator: one image is in memory at a time."""
    bits = np.unpackbits(
        np.array([phash(im) for im in images], dtype=">u8").view(np.uint8).reshape(-1, 8), axis=1
    )
    return (bits.astype(np.float32) * 2 - 1) / 8.0
