"""Shortlist → verification → fused decision for card crops.

The embedding gives a shortlist (its top-k, joined by the pHash top-k, which costs nothing and
catches what a small embedding misses); each shortlisted card is verified against the query with
ORB + RANSAC (and its bottom strip compared) using the gallery features stored in the DB; the
stages are fused and decided by :mod:`cardid.db.decide`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from cardid.db.decide import AMBIGUOUS, MATCH, Calibration, Candidate, Decision, decide
from cardid.db.store import CardDB
from cardid.db.verify import (
    SAME_ART_BITS,
    Features,
    Verification,
    card_hash,
    extract,
    match,
    mutual_inliers,
    strip_scores,
    warp_strip,
)
from cardid.embed import Embedder
from cardid.errors import CardIDError
from cardid.printing.model import Evidence, PrintingModel, PrintingSet
from cardid.printing.number import agrees
from cardid.printing.ocr import PrintedReading, layout_of, read_printed, tesseract_available
from cardid.search import topk_cosine


def _default_reader(config: MatchConfig) -> Callable[..., PrintedReading] | None:
    return read_printed if config.read_numbers and tesseract_available() else None


@dataclass(frozen=True)
class MatchConfig:
    shortlist: int = 16  # embedding top-k
    hash_shortlist: int = 4  # pHash top-k joined to it
    verify: bool = True  # geometric verification (needs DB features)
    # Verify in rounds, best prior first; stop once one card is clearly verified (its same-art
    # siblings are then verified too, so reprints still tie). Unknown cards verify the whole list.
    early_stop: bool = True
    first_round: int = 4
    round_size: int = 4
    stop_inliers: int = 60
    stop_lead: float = 0.3  # (sqrt(best inliers) - sqrt(next)) / 10
    # Read the collector number (OCR) where the printing is in doubt: an ambiguous set, or a match
    # with another printing of the same name in its shortlist or sharing its art. Off, or without
    # Tesseract: not read.
    read_numbers: bool = True
    #: how the printing is decided once the card is known: "model" (one calibrated probability per
    #: printing, :mod:`cardid.printing.model`) or "rules" (printings → number → strip margin, as
    #: before the model: kept to compare the two on the same photos)
    printing: str = "model"

    def __post_init__(self) -> None:
        if self.printing not in ("model", "rules"):
            raise CardIDError(f"MatchConfig.printing must be 'model' or 'rules', got {self.printing!r}")


@dataclass
class Query:
    embedding: np.ndarray
    features: Features | None
    hash_sims: np.ndarray  # vs every DB row
    cache: dict = field(default_factory=dict)  # row → Verification
    image: np.ndarray | None = None  # the crop at full resolution (the collector number is read off it)
    #: the embedding before the query adapter (None: no adapter): the printing is weighed on it, so
    #: an adapter fitted on photos of some printings cannot tilt the choice between printings
    raw_embedding: np.ndarray | None = None


class Matcher:
    """Turns card crops into decisions against one DB with the model that built it."""

    def __init__(
        self,
        db: CardDB,
        embedder: Embedder,
        config: MatchConfig = MatchConfig(),
        calibration: Calibration | None = None,
        reader: Callable[..., PrintedReading] | None = None,
        printing_model: PrintingModel | None = None,
    ):
        db.check_embedder(embedder)
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
        if printing_model is None:
            stored = calibration.printing
            printing_model = PrintingModel.from_dict(stored) if stored else PrintingModel()
        self.printing_model = printing_model
        #: maps query embeddings towards their scans' (:mod:`cardid.embed.adapter`): the DB's, if
        #: one was fitted on labelled real photos; settable (fold evaluation sets one per fold)
        self.adapter = db.adapter
        self._hashes = db.features.hashes if db.features is not None else None
        self._art_differs: dict[tuple[int, int], bool] = {}  # gallery pairs, compared once
        #: (card crop, corners to read, accept=) → PrintedReading; Tesseract by default (None: not read)
        self.reader = reader if reader is not None else _default_reader(config)

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

    def query(self, image: np.ndarray, embedding: np.ndarray) -> Query:
        raw = None
        if self.adapter is not None:  # learned on real photo ↔ scan pairs: queries only
            raw, embedding = embedding, self.adapter(embedding[None])[0]
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
                cands[r].inliers = self._verify(q, r).inliers
            for c in cands.values():  # not verified: no geometric evidence for it
                c.verified = c.inliers is not None
                c.inliers = c.inliers or 0
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
                self._verify(q, r)
                done.append(r)
            if len(done) >= len(order):
                return done
            roots = sorted(((np.sqrt(q.cache[r].inliers), r) for r in done), reverse=True)
            best_root, best = roots[0]
            second = roots[1][0] if len(roots) > 1 else 0.0
            if best_root**2 >= cfg.stop_inliers and (best_root - second) / 10 >= cfg.stop_lead:
                siblings = self._same_art(best, [r for r in order if r not in done])
                for r in siblings:
                    self._verify(q, r)
                return done + siblings
            n += cfg.round_size

    def _same_art(self, row: int, rows: list[int]) -> list[int]:
        h = np.asarray(self.db.features.hashes)
        e = self.db.embeddings
        return [
            r
            for r in rows
            if int(np.bitwise_count(h[r] ^ h[row])) <= SAME_ART_BITS or float(e[r] @ e[row]) >= 0.9
        ]

    def _verify(self, q: Query, row: int) -> Verification:
        if row not in q.cache:
            feats = self.db.features
            pts, desc = feats.keypoints(row)
            q.cache[row] = match(q.features, np.asarray(pts), np.asarray(desc), feats.cfg)
        return q.cache[row]

    #: Two gallery scans whose art boxes share at most this many inliers …
    ART_DIFFERS_INLIERS = 8
    #: … and whose whole cards share fewer than this (holo foil hides a shared art box) show
    #: different art: on the real gallery, different art 4-6 art-box inliers, the same art in a
    #: new frame 24-370, holo against non-holo 12-14 with 131-166 on the whole card.
    SAME_CARD_WHOLE_INLIERS = 60

    def art_differs(self, a: int, b: int) -> bool:
        """Whether DB rows ``a`` and ``b`` show different art: by their ``art_id`` where the
        metadata has one (synthetic catalogs), else scan against scan, art box and whole card.
        False when it cannot be told (a DB without art features): the strips decide, as before."""
        ra, rb = self.db.records[self.db.ids[a]], self.db.records[self.db.ids[b]]
        art_a, art_b = getattr(ra, "art_id", None), getattr(rb, "art_id", None)
        if art_a is not None and art_b is not None:
            return art_a != art_b
        feats = self.db.features
        if feats is None or feats.art is None:
            return False
        key = (min(a, b), max(a, b))
        if key not in self._art_differs:
            differs = mutual_inliers(feats.art[a], feats.art[b], feats.cfg) <= self.ART_DIFFERS_INLIERS
            if differs:  # the art boxes disagree: unless the whole cards agree (holo foil)
                whole = mutual_inliers(feats.whole[a], feats.whole[b], feats.cfg)
                differs = whole < self.SAME_CARD_WHOLE_INLIERS
            self._art_differs[key] = differs
        return self._art_differs[key]

    def resolve(self, q: Query, d: Decision) -> Decision:
        """An ambiguous set of verified cards (same art): let the bottom strips decide, comparing
        the query only where those cards' strips differ (collector number, set symbol). A set
        holding a card whose art differs from the leader's stays ambiguous: art is judged by the
        embedding and the verifier, which left it in doubt, never by a strip."""
        if d.kind != AMBIGUOUS or q.features is None or self.calibration.mode != "fused":
            return d
        if any(self.art_differs(d.cards[0].row, c.row) for c in d.cards[1:]):
            return d
        if any(c.row not in q.cache or q.cache[c.row].homography is None for c in d.cards):
            return d
        strips = self._strips(q, d.cards)
        if not strips:  # the printings do not differ where we look: truly ambiguous
            return d
        scores = [strips[c.row] for c in d.cards]
        for c, s in zip(d.cards, scores, strict=True):
            c.strip = s
        best = int(np.argmax(scores))
        if scores[best] >= self.calibration.strip_margin:  # it beats every other card by the margin
            return Decision(
                MATCH, [d.cards[best]], d.score, d.candidates, resolved_by="strip", printed=d.printed
            )
        return d

    def printings(self, q: Query, d: Decision) -> Decision:
        """A match whose shortlist also holds another printing of the same card (same name and
        art, also verified) is not yet a decision: art confirms the Pokémon, not the printing. A
        same-name card with other art (Fossil's Gastly beside base1's) is not a printing of it:
        the art, which the match was decided on, tells them apart. The set goes
        to the bottom-strip check (:meth:`resolve`), which names one printing or says
        ``ambiguous`` — never the confident wrong printing that art alone gives (on real listing
        photos, base1 vs its Evolutions reprint: 16 % of same-name cases wrong by art, 2.5 % after)."""
        if d.kind != MATCH or q.features is None or self.calibration.mode != "fused":
            return d
        top = d.cards[0]
        printings = {r for r in self.db.printings_of(top.row) if not self.art_differs(top.row, r)}
        siblings = [c for c in d.candidates if c.row != top.row and c.verified and c.row in printings]
        siblings += self._unverified_printings(q, top, d, {c.row for c in siblings}, printings)
        if not siblings:  # verified ones only: their homographies (in q.cache) place the strips
            return d
        return Decision(AMBIGUOUS, [top, *siblings], d.score, d.candidates)

    #: another printing verified only now (early stop skipped it, or the shortlist missed it)
    #: joins the set when its art matches this well: ≥ this share of the match's inliers …
    SIBLING_INLIER_SHARE = 0.4
    #: … and at least this many
    SIBLING_MIN_INLIERS = 15
    #: printings of the card outside the shortlist that are verified, nearest by embedding first
    SIBLING_OUTSIDE = 3

    def _unverified_printings(
        self, q: Query, top: Candidate, d: Decision, seen: set[int], printings: set[int]
    ) -> list[Candidate]:
        """Same-art printings of the match that verification has not looked at (early stop ended
        before them, or they were not shortlisted): verified now, kept when their art matches."""
        by_row = {c.row: c for c in d.candidates}
        rows = [r for r in self.db.printings_of(top.row) if r in printings and r != top.row and r not in seen]
        inside = [r for r in rows if r in by_row and not by_row[r].verified]
        outside = sorted(
            (r for r in rows if r not in by_row),
            key=lambda r: -float(self.db.embeddings[r] @ q.embedding),
        )[: self.SIBLING_OUTSIDE]
        need = max(self.SIBLING_MIN_INLIERS, self.SIBLING_INLIER_SHARE * (top.inliers or 0))
        out = []
        for r in inside + outside:
            v = self._verify(q, r)
            if v.homography is None or v.inliers < need:
                continue
            c = by_row.get(r) or Candidate(
                r, self.db.ids[r], float(self.db.embeddings[r] @ q.embedding), float(q.hash_sims[r])
            )
            c.inliers, c.verified = v.inliers, True
            out.append(c)
        return out

    def by_number(self, q: Query, d: Decision) -> Decision:
        """Where the printing is in doubt, read the collector number off the crop and let it decide.

        In doubt: an ambiguous set, or a match with another printing (same name) in its
        shortlist or sharing its art. An ambiguous set is resolved when exactly one member agrees
        with what was read; a match whose number names exactly one other printing of the card
        becomes that printing; a match the reading contradicts while no printing agrees stays a
        match, flagged (``agrees: false``): a misread must not cost a right answer. Nothing
        legible: today's decision, with the reason recorded."""
        if self.reader is None or q.image is None or d.kind not in (MATCH, AMBIGUOUS):
            return d
        if d.kind == AMBIGUOUS:
            group = [c.row for c in d.cards]
        else:
            top_row = d.cards[0].row
            printings = self.db.printings_of(top_row)
            if len(printings) < 2:
                return d  # one printing of this card: nothing to tell apart
            # in doubt only against printings that could look like it: in the shortlist, or
            # sharing its art (a Pikachu has a hundred printings, most with art of their own)
            near = {c.row for c in d.candidates}
            if self.db.features is not None:
                near |= set(self._same_art(top_row, printings))
            group = [r for r in printings if r == top_row or r in near]
            if len(group) < 2:
                return d
        reading, printed, agreeing, _ = self._read_number(q, group)
        if not reading.legible:
            printed["agrees"] = None
            d.printed = printed
            return d
        if d.kind == AMBIGUOUS:
            printed["agrees"] = len(agreeing) == 1
            if len(agreeing) == 1:
                card = next(c for c in d.cards if c.row == agreeing[0])
                return Decision(MATCH, [card], d.score, d.candidates, resolved_by="number", printed=printed)
            d.printed = printed
            return d
        top = d.cards[0]
        printed["agrees"] = top.row in agreeing
        if top.row not in agreeing and len(agreeing) == 1 and self._sure(reading, agreeing[0], d):
            row = agreeing[0]
            card = next((c for c in d.candidates if c.row == row), None)
            if card is None:  # a printing the shortlist missed: same art, its own number
                card = Candidate(row, self.db.ids[row], float(self.db.embeddings[row] @ q.embedding), 0.0)
                card.score = top.score
            return Decision(MATCH, [card], d.score, d.candidates, resolved_by="number", printed=printed)
        d.printed = printed
        return d

    def _read_number(self, q: Query, rows: list[int]) -> tuple[PrintedReading, dict, list[int], bool]:
        """Read the collector number off the crop for these DB rows: (the reading, its record with
        ``agreeing`` ids, the rows it agrees with, whether only loosely — a total one digit off
        counts only when nothing agrees exactly)."""
        members = [self.db.records[self.db.ids[r]] for r in rows]
        layouts = tuple(sorted({k for m in members for k in layout_of(m.series)}))
        reading = self.reader(q.image, layouts, accept=lambda x: any(agrees(x, m) for m in members))
        printed = reading.to_dict()
        for loose in (False, True):
            agreeing = [
                r
                for r, m in zip(rows, members, strict=True)
                if any(agrees(x, m, loose_total=loose) for x in reading.readings)
            ]
            if agreeing:
                break
        printed["agreeing"] = [self.db.ids[r] for r in agreeing]
        return reading, printed, agreeing, loose

    def _sure(self, reading: PrintedReading, row: int, d: Decision) -> bool:
        """Enough to move a match to another printing: that printing was verified against the
        crop (same art), or both the number and the printed total agree with it."""
        if any(c.row == row and c.verified and (c.inliers or 0) > 0 for c in d.candidates):
            return True
        rec = self.db.records[self.db.ids[row]]
        if rec.set_total is None:
            return False
        return any(x.total is not None and agrees(x, rec) for x in reading.readings)  # exact, not loose

    def printing_set(self, q: Query, d: Decision) -> tuple[PrintingSet, list[Candidate], dict | None] | None:
        """The printings of the decided card in sight of the crop, with their evidence: the match
        (or the tied set), every same-name card the shortlist verified (whatever its art), and
        same-art printings verified now; the strip compared between those sharing the leader's art,
        the number read where legible. None when there is one printing only (nothing to decide)."""
        if d.kind not in (MATCH, AMBIGUOUS) or q.features is None or self.calibration.mode != "fused":
            return None
        top = d.cards[0]
        named = set(self.db.printings_of(top.row))
        cands = {c.row: c for c in d.cards}
        for c in d.candidates:
            if c.row not in cands and c.verified and c.row in named:
                cands[c.row] = c
        same_art = {r for r in named if not self.art_differs(top.row, r)}
        for c in self._unverified_printings(q, top, d, set(cands), same_art):
            cands[c.row] = c
        if len(cands) < 2:
            return None
        members = list(cands.values())
        strips = self._strips(q, [c for c in members if not self.art_differs(top.row, c.row)])
        numbers, printed = self._numbers(q, members)
        width = float(q.image.shape[1]) if q.image is not None else self.db.features.cfg.strip_width
        if q.raw_embedding is not None:  # the adapter finds the card; the printing is weighed without it
            cos = {c.row: float(self.db.embeddings[c.row] @ q.raw_embedding) for c in members}
        else:
            cos = {c.row: c.cos for c in members}
        evidence = tuple(
            Evidence(c.card_id, cos[c.row], int(c.inliers or 0), strips.get(c.row), numbers.get(c.row, 0.0))
            for c in members
        )
        return PrintingSet(evidence, width), members, printed

    def _strips(self, q: Query, cards: list[Candidate]) -> dict[int, float]:
        """Bottom-strip leads among same-art cards verified against the crop (their homographies
        place the strip), compared at the crop's own resolution."""
        cards = [c for c in cards if c.row in q.cache and q.cache[c.row].homography is not None]
        if len(cards) < 2:
            return {}
        feats = self.db.features
        warped = [warp_strip(q.features, q.cache[c.row].homography, feats.cfg) for c in cards]
        scale = q.image.shape[1] / feats.cfg.strip_width if q.image is not None else 1.0
        scores = strip_scores(warped, [np.asarray(feats.strips[c.row]) for c in cards], scale=scale)
        return {} if scores is None else {c.row: s for c, s in zip(cards, scores, strict=True)}

    def _numbers(self, q: Query, cards: list[Candidate]) -> tuple[dict[int, float], dict | None]:
        """The collector number read off the crop, as evidence for each card: +1 it agrees, +0.5
        agrees but for a total one off, -1 legible and another card agrees but not this one."""
        if self.reader is None or q.image is None or not self.config.read_numbers:
            return {}, None
        reading, printed, agreeing, loose = self._read_number(q, [c.row for c in cards])
        if not reading.legible or not agreeing:  # a misread must not cost a right answer
            return {}, printed
        hit = 0.5 if loose else 1.0
        return {c.row: hit if c.row in agreeing else -1.0 for c in cards}, printed

    def printing(self, q: Query, d: Decision) -> Decision:
        """The printing of a decided card, by the printing model: the printing named with its
        probability when that reaches the model's ``p_min``, else ``ambiguous`` between the
        printings still plausible. A card with one printing in sight is left as decided."""
        found = self.printing_set(q, d)
        if found is None:
            return d
        s, members, printed = found
        call = self.printing_model.decide(s)
        by_id = {c.card_id: c for c in members}
        record = s.to_dict()
        for m in record["members"]:
            m["p"] = call.probabilities[m["card_id"]]
        if printed is not None:
            legible = bool(printed["readings"]) and call.card_id is not None
            printed["agrees"] = call.card_id in printed["agreeing"] if legible else None
        if call.card_id is None:
            cards = [by_id[c] for c in call.plausible]
            return Decision(
                AMBIGUOUS,
                cards,
                d.score,
                d.candidates,
                printed=printed,
                probability=call.probability,
                printing=record,
            )
        return Decision(
            MATCH,
            [by_id[call.card_id]],
            d.score,
            d.candidates,
            resolved_by=self.printing_model.leading_cue(s, call.card_id),
            printed=printed,
            probability=call.probability,
            printing=record,
        )

    def decide(self, q: Query, exclude: Iterable[int] = ()) -> Decision:
        d = decide(self.candidates(q, exclude), self.calibration)
        if self.config.printing == "model":
            return self.printing(q, d)
        d = self.printings(q, d)
        if self.config.read_numbers:  # the number first: it named no wrong printing where the strip did
            d = self.by_number(q, d)
        return self.resolve(q, d)

    def recognize(self, images: Sequence[np.ndarray]) -> list[Decision]:
        if not images:
            raise CardIDError("no images to recognise")
        return [self.decide(q) for q in self.prepare(images)]
