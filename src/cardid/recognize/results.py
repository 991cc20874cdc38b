"""What recognising a photo returns: typed results, and their one JSON form.

A :class:`PhotoResult` holds a :class:`CardResult` per card found (its decision, corners,
orientation, or the fallback window it came from) and the photo's timing. Code that needs the
decisions reads these fields; :meth:`PhotoResult.to_json` is the record `cardid recognize` prints,
`cardid serve` answers and `cardid eval photos` keeps — written here once, never parsed back.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cardid.db.store import CardDB
from cardid.decision.decide import AMBIGUOUS, MATCH, Candidate, Decision


def card_json(db: CardDB, c: Candidate) -> dict:
    """One card of a decision as JSON: its name, set and number, and its evidence."""
    r = db.records[c.card_id]
    d = {"card_id": c.card_id, "name": r.name, "set_id": r.set_id, "set_name": r.set_name, "number": r.number}
    d.update(similarity=round(c.cos, 4), score=round(c.score, 4))
    if c.inliers is not None:
        d["inliers"] = c.inliers
    if c.strip is not None:
        d["strip"] = round(c.strip, 4)
    return d


def decision_record(db: CardDB, d: Decision, top: int = 5, **extra) -> dict:
    """The JSON form of one decision."""
    return {
        **extra,
        "decision": d.kind,
        "card": card_json(db, d.cards[0]) if d.kind == MATCH else None,
        "ambiguous_between": [card_json(db, c) for c in d.cards] if d.kind == AMBIGUOUS else [],
        "resolved_by": d.resolved_by,
        # the printing's probability when the card has several printings in sight, and the set
        # weighed (each printing's evidence and probability); None: one printing, no doubt
        "probability": None if d.probability is None else round(d.probability, 4),
        "printing": d.printing,
        "printed": d.printed,
        "score": round(d.score, 4),
        "top": [card_json(db, c) for c in d.candidates[:top]],
    }


Corners = list[list[float]]


@dataclass(frozen=True)
class CardResult:
    """One card of a photo: its decision and where it is. ``corners`` (TL TR BR BL, photo pixels)
    are None for a card crop given as such. A card taken from a window of the photo because the
    finder found nothing it could name has ``fallback`` ("whole_image"), its ``reason`` and the
    ``window`` ("whole" or "centre")."""

    decision: Decision
    corners: Corners | None = None
    detection_score: float | None = None
    upside_down: bool | None = None
    #: how much its quad looks like one card (:mod:`cardid.detect.plausibility`), and how many of
    #: the finder's boxes it stands for (:mod:`cardid.recognize.merge`)
    plausibility: float | None = None
    merged: int = 1
    fallback: str | None = None
    reason: str | None = None
    window: str | None = None
    db: CardDB | None = field(default=None, repr=False, compare=False)
    top: int = 5

    @property
    def card_id(self) -> str | None:
        return self.decision.card_id

    def to_json(self) -> dict:
        rec = decision_record(self.db, self.decision, self.top)
        if self.fallback is not None:
            rec.update(fallback=self.fallback, fallback_reason=self.reason, window=self.window)
            rec.update(corners=self.corners, merged=self.merged)
        elif self.corners is not None:
            rec.update(
                corners=self.corners,
                detection_score=self.detection_score,
                upside_down=self.upside_down,
                plausibility=self.plausibility,
                merged=self.merged,
            )
        return rec


@dataclass(frozen=True)
class PhotoResult:
    """Every card found in one photo. ``no_card``: nothing named and nothing outlined;
    ``fallback``: a card came from a window of the photo (see :class:`CardResult`); ``ms`` and
    ``calibrated`` once timed (:meth:`cardid.recognize.Recognizer.timed`)."""

    cards: tuple[CardResult, ...]
    no_card: bool = False
    fallback: bool = False
    ms: float | None = None
    calibrated: bool | None = None

    @property
    def decisions(self) -> list[Decision]:
        return [c.decision for c in self.cards]

    def to_json(self) -> dict:
        d: dict = {"no_card": self.no_card, "cards": [c.to_json() for c in self.cards]}
        if self.fallback:
            d["fallback"] = True
        if self.ms is not None:
            d.update(ms=self.ms, calibrated=self.calibrated)
        return d
