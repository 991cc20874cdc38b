"""Shortlist → verification → fused decision → printing, for card crops.

The embedding gives a shortlist (its top-k, joined by the pHash top-k, which costs nothing and
catches what a small embedding misses); each shortlisted card is verified against the query with
ORB + RANSAC using the gallery features stored in the DB; the evidence is fused and decided by
:mod:`cardid.decision.decide`; then the steps of :meth:`Matcher.steps` (:mod:`cardid.decision.refine`) decide
the printing, each returning a new decision. ``Matcher.decide`` is the one way a crop is decided:
``recognize``, ``serve``, ``eval real`` and ``eval photos`` all call it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from cardid.db.art import ArtRelations, similar_scans
from cardid.db.store import CardDB
from cardid.db.verify import Verification, card_hash, extract, match
from cardid.decision import refine
from cardid.decision.decide import Calibration, Candidate, Decision, decide, inlier_lead
from cardid.decision.printing import PrintingModel
from cardid.decision.query import MatchConfig, Query
from cardid.embed import Embedder
from cardid.errors import CardIDError
from cardid.printing.ocr import PrintedReading, read_printed, tesseract_available
from cardid.search import topk_cosine

#: one refinement of a decision: (matcher, query, decision) → a new decision
Step = Callable[["Matcher", Query, Decision], Decision]

__all__ = ["MatchConfig", "Matcher", "Query", "Step"]


def _default_reader(config: MatchConfig) -> Callable[..., PrintedReading] | None:
    return read_printed if config.read_numbers and tesseract_available() else None


#: "as the DB says" for an argument of :class:`Matcher` (its adapter: the DB's own)
FROM_DB: Any = type("FromDB", (), {"__repr__": lambda self: "FROM_DB"})()


class Matcher:
    """Turns card crops into decisions against one DB with the model that built it.

    Frozen: what it derives at construction (the calibration mode, the printing decider, the
    gallery's hashes and art relations) never goes stale, because nothing is assigned to it
    afterwards. :meth:`with_` gives a matcher with other settings (an adapter for one fold, a
    calibration to try), sharing the DB, the model and what was derived from them alone."""

    def __init__(
        self,
        db: CardDB,
        embedder: Embedder,
        config: MatchConfig = MatchConfig(),
        calibration: Calibration | None = None,
        reader: Callable[..., PrintedReading] | None = None,
        printing_model: PrintingModel | None = None,
        adapter: Any = FROM_DB,
        art: ArtRelations | None = None,
    ):
        db.check_embedder(embedder)
        settings = dict(
            config=config,
            calibration=calibration,
            reader=reader,
            printing_model=printing_model,
            adapter=adapter,
        )
        object.__setattr__(self, "_given", settings)  # what with_() builds the next one from
        self.db, self.embedder, self.config = db, embedder, config
        self.verifying = config.verify and db.features is not None
        mode = "fused" if self.verifying else "embedding"
        #: False for a DB nobody calibrated: then no threshold exists, and every decision is
        #: ``unknown`` (candidates still listed) rather than a confident name for anything at all
        self.calibrated = True
        if calibration is None:
            stored = (db.calibration or {}).get(mode)
            if stored:
                calibration = Calibration.from_dict(stored)
            else:
                self.calibrated = False
                calibration = Calibration(mode, threshold=math.inf)
        self.calibration = calibration
        model_given = printing_model is not None
        if printing_model is None:
            stored = calibration.printing
            printing_model = PrintingModel.from_dict(stored) if stored else PrintingModel()
        self.printing_model = printing_model
        #: "model" or "rules": what decides the printing here (``config.printing``, "auto" resolved)
        self.printing = config.printing
        if self.printing == "auto":
            real = model_given or printing_model.fitted.get("real_sets", 0) > 0
            self.printing = "model" if real else "rules"
        #: maps query embeddings towards their scans' (:mod:`cardid.embed.adapter`): the DB's, if
        #: one was fitted on labelled real photos, unless another is given (a fold's, or None)
        self.adapter = db.adapter if adapter is FROM_DB else adapter
        self._hashes = db.features.hashes if db.features is not None else None
        self.art = art if art is not None else ArtRelations(db)  # same art or not, between gallery rows
        #: (card crop, corners to read, accept=) → PrintedReading; Tesseract by default (None: not read)
        self.reader = reader if reader is not None else _default_reader(config)
        object.__setattr__(self, "_frozen", True)

    def __setattr__(self, name: str, value: Any) -> None:
        if getattr(self, "_frozen", False):
            raise AttributeError(
                f"a Matcher is frozen: matcher.with_({name}=…) gives one with another {name}"
            )
        object.__setattr__(self, name, value)

    def with_(self, **changes: Any) -> Matcher:
        """A matcher like this one with other settings (``config``, ``calibration``, ``reader``,
        ``printing_model``, ``adapter``): everything else derived again from them, the DB, the
        model and the art relations already compared shared."""
        unknown = sorted(set(changes) - set(self._given))
        if unknown:
            raise TypeError(f"Matcher.with_ takes {', '.join(self._given)}; not {', '.join(unknown)}")
        return Matcher(self.db, self.embedder, **{**self._given, **changes}, art=self.art)

    def prepare(
        self,
        images: Sequence[np.ndarray],
        progress: Callable[[int], None] | None = None,
        embeddings: np.ndarray | None = None,
    ) -> list[Query]:
        """Embed (unless ``embeddings`` are given) and extract verification features."""
        emb = self.embedder.embed(list(images)) if embeddings is None else embeddings
        out = []
        for im, e in zip(images, emb, strict=True):
            out.append(self.query(im, e))
            if progress:
                progress(1)
        return out

    def query(self, image: np.ndarray, embedding: np.ndarray, seen: Query | None = None) -> Query:
        """``seen``: this crop's query from an earlier pass (another adapter or decision setting):
        its features and verifications are reused, and what is decided is as if made afresh."""
        raw = None
        if self.adapter is not None:  # learned on real photo ↔ scan pairs: queries only
            raw, embedding = embedding, self.adapter(embedding[None])[0]
        if seen is not None:
            return Query(
                embedding, seen.features, seen.hash_sims, image=image, raw_embedding=raw, known=seen.seen()
            )
        cfg = self.db.features.cfg if self.db.features is not None else None
        feats, h = None, None
        if self.verifying:
            feats = extract(image, cfg, keep_fine=True)
            h = feats.hash
        elif cfg is not None:  # no verification: the pHash shortlist still costs nothing
            h = card_hash(image, cfg)
        if h is not None:
            sims = 1.0 - np.bitwise_count(np.asarray(self._hashes) ^ h).astype(np.float32) / 64.0
        else:
            sims = np.zeros(len(self.db), np.float32)
        return Query(embedding, feats, sims, image=image, raw_embedding=raw)

    def candidates(
        self, q: Query, exclude: Iterable[int] = (), verify: bool | None = None
    ) -> list[Candidate]:
        """The shortlist for one query with every score filled (rows in ``exclude`` left out, as if
        those cards were not in the DB)."""
        cfg, ex = self.config, set(exclude)
        verify = self.verifying if verify is None else verify
        k = min(cfg.shortlist + len(ex), len(self.db))
        sims, rows = topk_cosine(q.embedding[None], self.db.embeddings, k)
        cos = {int(r): float(s) for r, s in zip(rows[0], sims[0], strict=True) if int(r) not in ex}
        picked = list(cos)[: cfg.shortlist]
        if self._hashes is not None and cfg.hash_shortlist:
            order = np.argsort(-q.hash_sims, kind="stable")
            extra = [
                int(r) for r in order[: cfg.hash_shortlist + len(ex) + cfg.shortlist] if int(r) not in ex
            ]
            picked += [r for r in extra if r not in picked][: cfg.hash_shortlist]
        # verification order: embedding and pHash picks interleaved, best first
        emb_order = [r for r in picked if r in cos]
        hash_order = [r for r in picked if r not in cos]
        order = []
        for i in range(max(len(emb_order), len(hash_order))):
            order += emb_order[i : i + 1] + hash_order[i : i + 1]
        cands = {}
        for r in order:
            c = cos.get(r)
            if c is None:
                c = float(self.db.embeddings[r] @ q.embedding)
            cands[r] = Candidate(r, self.db.ids[r], c, float(q.hash_sims[r]))
        if verify and q.features is not None:
            for r in self._rounds(q, order):
                cands[r] = replace(cands[r], inliers=self.verify(q, r).inliers, verified=True)
            # not verified: no geometric evidence for it
            cands = {r: c if c.verified else replace(c, inliers=0) for r, c in cands.items()}
        return list(cands.values())

    def _rounds(self, q: Query, order: list[int]) -> list[int]:
        """Rows to verify: everything, or (early stop) rounds until one card clearly wins."""
        cfg = self.config
        if not cfg.early_stop:
            return order
        done: list[int] = []
        n = cfg.first_round
        while True:
            for r in order[len(done) : n]:
                self.verify(q, r)
                done.append(r)
            if len(done) >= len(order):
                return done
            counts = sorted(((q.cache[r].inliers, r) for r in done), reverse=True)
            most, best = counts[0]
            second = counts[1][0] if len(counts) > 1 else 0
            if most >= cfg.stop_inliers and inlier_lead(most, second) >= cfg.stop_lead:
                siblings = similar_scans(self.db, best, [r for r in order if r not in done])
                for r in siblings:
                    self.verify(q, r)
                return done + siblings
            n += cfg.round_size

    def verify(self, q: Query, row: int) -> Verification:
        """The crop verified against one gallery card (ORB + RANSAC), once per query and card."""
        if row not in q.cache:
            v = q.known.get(row)
            if v is None:
                feats = self.db.features
                pts, desc = feats.keypoints(row)
                v = match(q.features, np.asarray(pts), np.asarray(desc), feats.cfg)
            q.cache[row] = v
        return q.cache[row]

    def steps(self) -> tuple[Step, ...]:
        """What :meth:`decide` applies to the fused decision, in this order: the printing model,
        or (the rules) the printings check, the collector number, the strips."""
        if self.printing == "model":
            return (refine.printing,)
        number = (refine.by_number,) if self.config.read_numbers else ()
        return (refine.printings, *number, refine.resolve)

    def decide(self, q: Query, exclude: Iterable[int] = ()) -> Decision:
        """Shortlist → scores → match / ambiguous / unknown, then each step of :meth:`steps`."""
        d = decide(self.candidates(q, exclude), self.calibration)
        for step in self.steps():
            d = step(self, q, d)
        return d

    def recognize(self, images: Sequence[np.ndarray]) -> list[Decision]:
        if not images:
            raise CardIDError("no images to recognise")
        return [self.decide(q) for q in self.prepare(images)]
