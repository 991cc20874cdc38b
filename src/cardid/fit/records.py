"""A labelled photo's record, typed: what `cardid eval photos` keeps of each photo (its truth, its
outcome, its cards as recognised) and what everything fitted on real photos reads.

A card's part of a record is the card's one JSON form (:meth:`cardid.recognize.CardResult.to_json`),
held as written and read here only, through :class:`CardRecord`'s fields. A whole record is written
into a report by :meth:`PhotoRecord.to_json` and read back from one by :meth:`PhotoRecord.from_json`
(:func:`read_records`), so that a report can be re-decided later without its photos.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from cardid.decision.decide import MATCH
from cardid.decision.printing import PrintingSet
from cardid.errors import CardIDError

#: a photo's outcome (the strings its records and reports keep)
CORRECT, WRONG, AMBIGUOUS_TRUTH, AMBIGUOUS_OTHER, NOTHING_NAMED, NO_CARD = (
    "correct",
    "wrong",
    "ambiguous",
    "ambiguous_other",
    "unknown",
    "no_card",
)
OUTCOMES = (CORRECT, WRONG, AMBIGUOUS_TRUTH, AMBIGUOUS_OTHER, NOTHING_NAMED, NO_CARD)


@dataclass(frozen=True)
class Named:
    """One card a record names (a match, a member of an ambiguous set, a candidate): its id and,
    where the strips were compared, its strip lead."""

    card_id: str
    score: float | None = None
    strip: float | None = None
    json: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def of(cls, d: Mapping[str, Any]) -> Named:
        return cls(str(d["card_id"]), d.get("score"), d.get("strip"), d)

    def to_json(self) -> dict:
        return dict(self.json) if self.json else {"card_id": self.card_id}


@dataclass(frozen=True)
class CardRecord:
    """One card of a photo's record: its decision (``match``: ``card``; ``ambiguous``: ``between``),
    fused ``score``, top candidates, the printing set it weighed, corners and, for a card taken
    from a window of the photo, ``fallback_reason``."""

    decision: str
    card: Named | None
    between: tuple[Named, ...]
    score: float
    top: tuple[Named, ...]
    resolved_by: str | None = None
    printing_set: Mapping[str, Any] | None = None
    corners: list | None = None
    fallback_reason: str | None = None
    json: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> CardRecord:
        try:
            return cls(
                decision=str(d["decision"]),
                card=Named.of(d["card"]) if d.get("card") else None,
                between=tuple(Named.of(x) for x in d.get("ambiguous_between") or ()),
                score=float(d.get("score", 0.0)),
                top=tuple(Named.of(x) for x in d.get("top") or ()),
                resolved_by=d.get("resolved_by"),
                printing_set=d.get("printing") or None,
                corners=d.get("corners"),
                fallback_reason=d.get("fallback_reason") if d.get("fallback") else None,
                json=d,
            )
        except (KeyError, TypeError, ValueError) as e:
            raise CardIDError(f"malformed card record ({e}): {dict(d)!r:.200}") from e

    @property
    def named(self) -> str | None:
        """The card named, or None (ambiguous, unknown)."""
        return self.card.card_id if self.card else None

    @property
    def found(self) -> bool:
        """Found by the finder (not taken from a window of the photo)."""
        return not self.json.get("fallback")

    def printing(self, truth: str | None = None) -> PrintingSet | None:
        """The printing set this card weighed (each printing's evidence), or None."""
        return PrintingSet.from_dict(dict(self.printing_set), truth) if self.printing_set else None

    def strips(self) -> dict[str, Named]:
        """The cards of its set, the card named and its top candidates whose strips were compared,
        by id (in that order; a card listed twice as last listed)."""
        out: dict[str, Named] = {}
        for c in (*self.between, *([self.card] if self.card else []), *self.top):
            if c.strip is not None:
                out[c.card_id] = c
        return out

    def redecided(
        self, decision: str, card: Named | None = None, between: Sequence[Named] = ()
    ) -> CardRecord:
        """The same card decided otherwise (a match of ``card``, or ambiguous ``between``)."""
        card, between = (card, ()) if decision == MATCH else (None, tuple(between))
        json = {
            **self.json,
            "decision": decision,
            "card": card.to_json() if card else None,
            "ambiguous_between": [b.to_json() for b in between],
        }
        return replace(self, decision=decision, card=card, between=between, json=json)

    def kept(self, top: int = 3) -> CardRecord:
        """As a photo's record keeps it: its first ``top`` candidates."""
        json = {k: v for k, v in self.json.items() if k != "top"} | {
            "top": [t.to_json() for t in self.top[:top]]
        }
        return replace(self, top=self.top[:top], json=json)

    def to_json(self) -> dict:
        return dict(self.json)


@dataclass(frozen=True)
class PhotoRecord:
    """One labelled photo as evaluated: its truth and notes, its outcome
    (:data:`OUTCOMES`), the card ``named`` and its ``score``, the threshold-free
    top-1, the cards ``found`` by the finder, the fallback's reason, ms, and every card's record."""

    file: str
    card_id: str
    outcome: str
    cards: tuple[CardRecord, ...]
    notes: str = ""
    groups: tuple[str, ...] = ()
    top1: str | None = None
    found: int = 0
    fallback: str | None = None
    ms: float | None = None
    score: float | None = None
    named: str | None = None

    @property
    def no_card(self) -> bool:
        return self.outcome == NO_CARD

    def to_json(self) -> dict:
        return {
            "file": self.file,
            "card_id": self.card_id,
            "notes": self.notes,
            "groups": list(self.groups),
            "outcome": self.outcome,
            "top1": self.top1,
            "found": self.found,
            "fallback": self.fallback,
            "ms": self.ms,
            "score": self.score,
            "named": self.named,
            "cards": [c.to_json() for c in self.cards],
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> PhotoRecord:
        try:
            return cls(
                file=str(d["file"]),
                card_id=str(d["card_id"]),
                outcome=str(d["outcome"]),
                cards=tuple(CardRecord.from_json(c) for c in d["cards"]),
                notes=d.get("notes", ""),
                groups=tuple(d.get("groups") or ()),
                top1=d.get("top1"),
                found=int(d.get("found", 0)),
                fallback=d.get("fallback"),
                ms=d.get("ms"),
                score=d.get("score"),
                named=d.get("named"),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise CardIDError(f"malformed photo record ({e}): {dict(d)!r:.200}") from e


def read_records(rows: Iterable[Mapping[str, Any]]) -> list[PhotoRecord]:
    """Records read back from a report's ``per_photo`` list."""
    return [PhotoRecord.from_json(r) for r in rows]


def records_json(per: Iterable[PhotoRecord]) -> list[dict]:
    """Records as a report keeps them."""
    return [p.to_json() for p in per]
