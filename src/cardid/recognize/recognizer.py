"""One photo → every card in it, decided: find, rectify, try both ways up, embed, decide.

Inputs are card crops, or — with a detector — whole photos (binder pages included); a photo
without any card says ``no_card``; a photo where the finder finds nothing it can name is tried
as a whole. :class:`Recognizer` is the Python API for apps; it returns typed results
(:mod:`cardid.recognize.results`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from cardid.db.backs import load_backs
from cardid.db.store import CardDB
from cardid.decision.decide import AMBIGUOUS, BACK, MATCH, UNKNOWN, Decision
from cardid.decision.match import MatchConfig, Matcher, Query
from cardid.detect.plausibility import MIN_PLAUSIBILITY, plausibility
from cardid.detect.rectify import orientations, rectify, refine_corners
from cardid.embed import Embedder, load_embedder
from cardid.recognize.merge import NESTED, containers, one_per_card, overlap, repeats
from cardid.recognize.results import CardResult, PhotoResult
from cardid.search import topk_cosine


def make_detector(spec: str | Path, conf: float = 0.25):
    """``classical`` (OpenCV, no training), a YOLO-OBB ``.onnx`` (onnxruntime alone) or ``.pt``
    (ultralytics, torch)."""
    if str(spec) == "classical":
        from cardid.detect.classical import ClassicalFinder

        return ClassicalFinder()
    if str(spec).lower().endswith(".onnx"):
        from cardid.detect.onnx_obb import OnnxObbDetector

        return OnnxObbDetector(spec, conf=conf)
    from cardid.detect.yolo import YoloDetector

    return YoloDetector(spec, conf=conf)


@dataclass
class Memo:
    """What one photo's recognition keeps for a later pass over the same photo: everything no
    decision setting changes, never a crop (megabytes; rectified again when needed). Written by
    the recognizer alone; its caller only keeps it (and the first pass's time, ``ms``)."""

    dets: list | None = None  # the finder's detections, in reading order
    quads: list | None = None  # their corners, refined
    emb: np.ndarray | None = None  # every crop's embedding, both ways up
    query: Query | None = None  # the photo as one crop (no finder)
    queries: dict[int, Query] = field(default_factory=dict)  # crop index → its query
    whole: tuple[np.ndarray, int] | None = None  # the whole-image look: embeddings, the window kept
    whole_query: Query | None = None
    ms: float | None = None  # the first pass's time, reported again by later passes


class Recognizer:
    """Photo → every card in it → decision. ``detector=None`` treats each image as one card crop."""

    #: a photo with at most this many detections, none recognised, is also tried as a whole
    retry_max_cards = 2

    def __init__(
        self,
        matcher: Matcher,
        detector=None,
        refine: bool = True,
        fallback: bool = True,
        min_plausibility: float = MIN_PLAUSIBILITY,
    ):
        self.matcher, self.detector, self.refine, self.fallback = matcher, detector, refine, fallback
        self.min_plausibility = min_plausibility
        self.backs = load_backs(matcher.db)

    def with_matcher(self, matcher: Matcher) -> Recognizer:
        """The same finder and settings around another matcher (a DB loaded again, say)."""
        return Recognizer(matcher, self.detector, self.refine, self.fallback, self.min_plausibility)

    def with_(self, **changes) -> Recognizer:
        """The same recognizer with other decision settings (:meth:`Matcher.with_`: an adapter,
        a calibration, a printing model…)."""
        return self.with_matcher(self.matcher.with_(**changes))

    @classmethod
    def open(
        cls, model, db, detector=None, config: MatchConfig = MatchConfig(), fallback: bool = True
    ) -> Recognizer:
        embedder = load_embedder(model) if not isinstance(model, Embedder) else model
        card_db = db if isinstance(db, CardDB) else CardDB.load(db, embedder)
        det = make_detector(detector) if isinstance(detector, str | Path) else detector
        return cls(Matcher(card_db, embedder, config), det, fallback=fallback)

    def whole_image(
        self, image: np.ndarray, top: int = 5, reason: str = "nothing_found", memo: Memo | None = None
    ) -> CardResult:
        """Take the photo itself as the card (a card filling the frame has no outline to find, and a
        finder may then return its art box). The whole image and a centred card-shaped window are
        embedded; the one closer to its nearest gallery card is verified and decided, flagged
        ``fallback: whole_image`` with the ``reason`` it ran. ``memo``: as :meth:`recognize_photo`."""
        m, db = self.matcher, self.matcher.db
        memo = Memo() if memo is None else memo
        crops = [image, *_card_windows(image)]
        if memo.whole is None:
            emb = m.embedder.embed(crops)
            memo.whole = (emb, int(topk_cosine(emb, db.embeddings, 1)[0][:, 0].argmax()))
        emb, k = memo.whole
        q = m.query(crops[k], emb[k], memo.whole_query)
        memo.whole_query = _kept(q)
        d = m.decide(q)
        h, w = image.shape[:2]
        window = ["whole", "centre"][min(k, 1)]
        corners = _window_corners(w, h, k)
        return CardResult(d, corners, fallback="whole_image", reason=reason, window=window, db=db, top=top)

    def timed(self, image: np.ndarray, top: int = 5, memo: Memo | None = None) -> PhotoResult:
        """:meth:`recognize_photo` with what every output records beside it: its milliseconds and
        whether the DB was calibrated."""
        t = time.perf_counter()
        r = self.recognize_photo(image, top, memo)
        ms = round((time.perf_counter() - t) * 1e3, 1)
        return replace(r, ms=ms, calibrated=self.matcher.calibrated)

    def recognize_photo(self, image: np.ndarray, top: int = 5, memo: Memo | None = None) -> PhotoResult:
        """One photo → every card in it, decided.

        All detected cards are embedded in one batch, both ways up; the orientation whose nearest
        gallery card is closer is kept, and only it is verified.

        ``memo``: a :class:`Memo` the caller keeps for this photo. The first call fills it with
        what no decision setting changes (the cards found, their embeddings, the crops' features
        and the verifications made); a later call — with another query adapter or printing model,
        as the fold evaluation does — reuses them and decides as if from scratch."""
        m, db = self.matcher, self.matcher.db
        memo = Memo() if memo is None else memo
        if self.detector is None:
            e = self._embed([image], memo)
            back = self._backs(e, topk_cosine(e, db.embeddings, 1)[0][:, :1])[0]
            if back is not None:
                return PhotoResult((CardResult(back, db=db, top=top),))
            q = m.query(image, e[0], memo.query)
            memo.query = _kept(q)
            return PhotoResult((CardResult(m.decide(q), db=db, top=top),))
        if memo.dets is None:
            dets = sorted(self.detector.detect(image), key=lambda d: (d.box()[1], d.box()[0]))
            memo.dets = dets
            memo.quads = [refine_corners(image, d.corners) if self.refine else d.corners for d in dets]
        h, w = image.shape[:2]
        plaus = [plausibility(q, w, h).score for q in memo.quads]
        keep, copies = self._kept_boxes(memo.quads, plaus)
        dets, quads = [memo.dets[i] for i in keep], [memo.quads[i] for i in keep]
        if not dets:
            if not self.fallback:
                return PhotoResult((), no_card=True)
            fb = self.whole_image(image, top, memo=memo)
            named = fb.decision.kind in (MATCH, AMBIGUOUS)
            return PhotoResult((fb,), no_card=not named, fallback=True)
        crops = [o for q in quads for o in orientations(rectify(image, q))]
        emb = self._embed(crops, memo)
        nearest = topk_cosine(emb, db.embeddings, 1)[0][:, 0].reshape(-1, 2)
        best = nearest.argmax(1)
        seen = memo.queries
        back = self._backs(emb, nearest)
        d_ = []
        for i in range(len(dets)):
            k = 2 * i + int(best[i])
            if back[i] is not None:  # a card's back: nothing to name, not an unknown card either
                d_.append(back[i])
                continue
            q = m.query(crops[k], emb[k], seen.get(k))
            seen[k] = _kept(q)
            d_.append(m.decide(q))
        # a page, a binder or a frame holding named cards is not a card; what is left, one per card
        drop = containers(quads, [d.kind in (MATCH, AMBIGUOUS) for d in d_])
        rest = [i for i in range(len(quads)) if i not in drop]
        one = one_per_card(
            [quads[i] for i in rest],
            [d_[i].kind for i in rest],
            [d_[i].score for i in rest],
            [d_[i].card_id for i in rest],
        )
        cards = [
            CardResult(
                d_[i],
                corners=[[round(float(x), 1), round(float(y), 1)] for x, y in quads[i]],
                detection_score=round(dets[i].score, 3),
                upside_down=bool(best[i]),
                plausibility=round(plaus[keep[i]], 3),
                merged=n + copies[i],
                db=db,
                top=top,
            )
            for i, n in ((rest[j], n) for j, n in one)
        ]
        if (
            self.fallback
            and len(cards) <= self.retry_max_cards
            and all(c.decision.kind == UNKNOWN for c in cards)
        ):
            # one or two things found and none of them is a known card: the finder may have found
            # a card's art box or a frame inside the photo; the photo as a whole gets a second look
            fb = self.whole_image(image, top, reason="nothing_recognised", memo=memo)
            if fb.decision.kind in (MATCH, AMBIGUOUS):
                # the unknown boxes inside the window that named the card are that card's parts
                inside = [c for c in cards if overlap(c.corners, fb.corners)[1] >= NESTED]
                fb = replace(fb, merged=1 + len(inside))
                return PhotoResult((*[c for c in cards if c not in inside], fb), fallback=True)
        return PhotoResult(tuple(cards))

    def _kept_boxes(self, quads: list, plaus: list[float]) -> tuple[list[int], list[int]]:
        """The finder's boxes worth embedding, in reading order: plausible as a card (at least
        ``min_plausibility``), not a near copy of a more plausible box; and how many near copies
        each stands for."""
        cand = [i for i, p in enumerate(plaus) if p >= self.min_plausibility]
        rep = repeats([quads[i] for i in cand], [plaus[i] for i in cand])
        kept = [j for j in range(len(cand)) if j not in rep]
        return [cand[j] for j in kept], [sum(k == j for k in rep.values()) for j in kept]

    def _backs(self, emb: np.ndarray, nearest: np.ndarray) -> list[Decision | None]:
        """Per crop (each way up it was embedded in ``emb``; ``nearest``: their cosines to the
        nearest gallery card, a row per crop), a ``back`` decision when it is at least the DB's back threshold from a back and
        closer to it than to any card; else None."""
        if self.backs is None:
            return [None] * len(nearest)
        sim = self.backs.similarity(emb).reshape(len(nearest), -1).max(1)
        gallery = nearest.max(1)
        return [
            Decision(BACK, [], float(s), []) if s >= self.backs.threshold and s > g else None
            for s, g in zip(sim, gallery, strict=True)
        ]

    def _embed(self, crops: list[np.ndarray], memo: Memo) -> np.ndarray:
        if memo.emb is None:
            memo.emb = self.matcher.embedder.embed(crops)
        return memo.emb


def _kept(q: Query) -> Query:
    """What a memo keeps of a query: all but its crop (megabytes; rectified again when needed).
    Its verifications are shared, so those made while deciding are kept too."""
    return replace(q, image=None)


def _centre_window(w: int, h: int) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) of the centred card-shaped (portrait) window of a w×h photo, or None when
    the photo already has the card's aspect."""
    from cardid.preprocess import CARD_ASPECT

    if abs(w / h - CARD_ASPECT) < 0.05:
        return None
    if w / h > CARD_ASPECT:  # too wide: full height, card-wide
        cw = round(h * CARD_ASPECT)
        return (w - cw) // 2, 0, (w - cw) // 2 + cw, h
    ch = round(w / CARD_ASPECT)
    return 0, (h - ch) // 2, w, (h - ch) // 2 + ch


def _card_windows(image: np.ndarray) -> list[np.ndarray]:
    box = _centre_window(image.shape[1], image.shape[0])
    if box is None:
        return []
    x0, y0, x1, y1 = box
    return [np.ascontiguousarray(image[y0:y1, x0:x1])]


def _window_corners(w: int, h: int, k: int) -> list[list[float]]:
    """Corners (TL TR BR BL) of window ``k``: 0 the whole photo, 1 the centred card window."""
    x0, y0, x1, y1 = (_centre_window(w, h) if k == 1 else None) or (0, 0, w, h)
    return [
        [float(x0), float(y0)],
        [float(x1 - 1), float(y0)],
        [float(x1 - 1), float(y1 - 1)],
        [float(x0), float(y1 - 1)],
    ]
