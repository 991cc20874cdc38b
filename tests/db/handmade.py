"""A hand-made DB for exact tests of the matcher's steps: cards, embeddings and pHashes set by
hand, verifications planted in the query's cache (so no image is ever matched), and a reader that
returns the text it is given. Every number a test asserts can be worked out on paper."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cardid.catalog.records import CardRecord, name_key
from cardid.db.verify import Features, Verification, VerifyConfig
from cardid.decision.decide import Calibration
from cardid.decision.match import MatchConfig, Matcher, Query
from cardid.printing.number import readings_from_text
from cardid.printing.ocr import PrintedReading

#: fused scores = 4 · sqrt(inliers)/10 (cos, pHash and lead weigh nothing): hand-computable
FUSED = Calibration("fused", threshold=0.5, margin=0.1, fusion={"weights": [0.0, 0.0, 4.0, 0.0], "bias": 0.0})


#: pairwise ≥ 20 bits apart: no two rows look alike by pHash unless a test says so
HASHES = [(0x9E3779B97F4A7C15 * (i + 1)) & (2**64 - 1) for i in range(64)]


@dataclass
class _Features:
    hashes: np.ndarray
    strips: np.ndarray
    cfg: VerifyConfig
    art = None


class HandDB:
    """What the matcher reads of a :class:`~cardid.db.store.CardDB`, and nothing else."""

    def __init__(self, cards: list[dict], embeddings: np.ndarray, hashes: list[int] | None = None):
        self.records = {c["id"]: CardRecord(**{"set_id": "s", "name": c["id"], **c}) for c in cards}
        self.ids = [c["id"] for c in cards]
        self.row_of = {c: i for i, c in enumerate(self.ids)}
        e = np.asarray(embeddings, np.float32)
        self.embeddings = e / np.linalg.norm(e, axis=1, keepdims=True)
        cfg = VerifyConfig()
        hashes = HASHES[: len(cards)] if hashes is None else hashes
        strips = np.zeros((len(cards), *cfg.strip_shape), np.uint8)  # no two differ: nothing to compare
        self.features = _Features(np.asarray(hashes, np.uint64), strips, cfg)
        self.calibration, self.adapter = None, None

    def __len__(self) -> int:
        return len(self.ids)

    def check_embedder(self, embedder) -> None:
        pass

    def printings_of(self, row: int) -> list[int]:
        key = name_key(self.records[self.ids[row]])
        return [i for i, c in enumerate(self.ids) if name_key(self.records[c]) == key]


def text_reader(text: str):
    """A collector-number reader that 'reads' ``text`` off any crop."""

    def read(image, layouts, accept=None) -> PrintedReading:
        return PrintedReading(text, readings_from_text(text))

    return read


def matcher(db: HandDB, reader=None, **config) -> Matcher:
    cfg = MatchConfig(**{"read_numbers": reader is not None, **config})
    m = Matcher(db, embedder=None, config=cfg, calibration=FUSED, reader=reader)
    return m


def query(db: HandDB, embedding, inliers: dict[int, int], hash_sims=None, image=True) -> Query:
    """A query whose verification against row r gives ``inliers[r]`` (rows not listed: 0, no
    homography); ``hash_sims`` vs every row (default 0)."""
    e = np.asarray(embedding, np.float32)
    cache = {
        r: Verification(inliers.get(r, 0), inliers.get(r, 0), np.eye(3) if inliers.get(r, 0) else None)
        for r in range(len(db))
    }
    sims = np.zeros(len(db), np.float32) if hash_sims is None else np.asarray(hash_sims, np.float32)
    img = np.zeros((448, 320, 3), np.uint8) if image else None
    cfg = db.features.cfg
    fine = np.zeros((round(cfg.frame_height * cfg.strip_scale), cfg.strip_width), np.uint8)
    feats = Features(np.zeros((0, 2), np.float32), np.zeros((0, 32), np.uint8), np.uint64(0), fine)
    return Query(e / np.linalg.norm(e), features=feats, hash_sims=sims, cache=cache, image=img)
