"""A DB's card backs: embeddings of reference images of a card's back, and the cosine from which a
crop is taken for a back (fitted: :mod:`cardid.fit.backs`).

Stored beside the gallery as ``backs.npy`` (hashed with the DB's files) and ``db.json``'s
``backs`` (the threshold and what it was fitted on). A DB without them knows no back.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np

from cardid.db.store import CardDB, DBError
from cardid.io import sha256_file, write_bytes_atomic

BACKS = "backs.npy"


@dataclass(frozen=True)
class Backs:
    """Reference embeddings of a card's back (rows, L2-normalised) and the cosine a crop needs to
    one of them to be a back (it must also be closer to a back than to any gallery card)."""

    embeddings: np.ndarray
    threshold: float
    info: dict

    def similarity(self, queries: np.ndarray) -> np.ndarray:
        """Each query's cosine to its nearest back."""
        return (np.asarray(queries, np.float32) @ self.embeddings.T).max(1)


def load_backs(db: CardDB) -> Backs | None:
    """The DB's backs, or None; files that disagree with ``db.json`` are an error naming them."""
    info = (getattr(db, "meta", None) or {}).get("backs")
    if not info:
        return None
    e = db.read_array(BACKS)
    if e.ndim != 2 or e.shape[1] != db.dim or not np.isfinite(e).all() or len(e) == 0:
        raise DBError(f"reference DB {db.root}: {BACKS} is {e.shape}, not finite rows of {db.dim}")
    return Backs(e.astype(np.float32), float(info["threshold"]), dict(info))


def save_backs(db: CardDB, embeddings: np.ndarray | None, threshold: float = 0.0, **info: Any) -> None:
    """Store the backs (``info``: what they were fitted on); None removes them."""
    files = dict(db.meta.get("files", {}))
    if embeddings is None:
        files.pop(BACKS, None)
        db.save_meta(backs=None, files=files)
        return
    e = np.asarray(embeddings, np.float32)
    e = e / np.linalg.norm(e, axis=1, keepdims=True)
    buf = io.BytesIO()
    np.save(buf, e)
    write_bytes_atomic(db.root / BACKS, buf.getvalue())
    files[BACKS] = sha256_file(db.root / BACKS)
    db.save_meta(backs={"threshold": round(float(threshold), 4), "references": len(e), **info}, files=files)
