"""One real photo's outcome: what `cardid eval photos` counts for each labelled photo.

Per photo the outcome is the best match in it: ``correct`` (the true card named), ``wrong`` (some
other card named), ``ambiguous`` (the truth in an ambiguous set; ``ambiguous_other``: not),
``unknown`` (cards found, none named), ``no_card`` (nothing found, and the fallback named nothing).
Computed from each photo's record (:mod:`cardid.fit.records`) so that a report can be re-decided
later without the photos.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from cardid.data.photoset import load_photo_set
from cardid.decision.decide import AMBIGUOUS, MATCH
from cardid.fit.records import (
    AMBIGUOUS_OTHER,
    AMBIGUOUS_TRUTH,
    CORRECT,
    NO_CARD,
    NOTHING_NAMED,
    OUTCOMES,
    WRONG,
    CardRecord,
    PhotoRecord,
)
from cardid.images import load_rgb
from cardid.recognize import Recognizer
from cardid.recognize.recognizer import Memo


def load_photo_rows(csv_path: Path, limit: int | None = None, seed: int = 0) -> list[dict]:
    """Rows ``path, card_id, notes`` of a labelled photo list (:func:`cardid.data.photoset.load_photo_set`,
    its checks included); ``limit``: a fixed random sample."""
    return load_photo_set(csv_path).sample(limit, seed).rows()


def note_groups(notes: str) -> list[str]:
    """The breakdown groups of a photo, from the CSV's free-text notes."""
    n = (notes or "").lower()
    groups = [
        g
        for g, key in (
            ("non-English", "non-english"),
            ("landscape front+back", "landscape"),
            ("basic-energy art", "basic-energy"),
        )
        if key in n
    ]
    return groups or ["plain"]


def photo_outcome(cards: Sequence[CardRecord], no_card: bool, truth: str) -> tuple[str, CardRecord | None]:
    """(outcome, the card record that decided it) for one photo of one card."""
    matches = [c for c in cards if c.decision == MATCH]
    if any(c.named != truth for c in matches):
        return WRONG, max((c for c in matches if c.named != truth), key=lambda c: c.score)
    if matches:
        return CORRECT, max(matches, key=lambda c: c.score)
    amb = [c for c in cards if c.decision == AMBIGUOUS]
    if amb:
        hit = [c for c in amb if truth in {x.card_id for x in c.between}]
        return (AMBIGUOUS_TRUTH, hit[0]) if hit else (AMBIGUOUS_OTHER, amb[0])
    if no_card:
        return NO_CARD, cards[0] if cards else None
    return NOTHING_NAMED, max(cards, key=lambda c: c.score) if cards else None


def _top1(cards: Sequence[CardRecord]) -> str | None:
    """The threshold-free answer: the top candidate of the card with the best fused score."""
    ranked = [c for c in cards if c.top]
    if not ranked:
        return None
    return max(ranked, key=lambda c: c.top[0].score).top[0].card_id


def evaluate_photo_set(
    rec: Recognizer,
    rows: list[dict],
    progress: Callable[[int], None] | None = None,
    memos: dict[str, Memo] | None = None,
) -> list[PhotoRecord]:
    """Each photo recognised → its record (outcome, top-1, cards, ms). ``memos`` (path → the
    recognizer's memo, :meth:`~cardid.recognize.Recognizer.recognize_photo`): a photo seen in an
    earlier pass is decided again from what that pass found and embedded (same records as from
    scratch), and keeps the milliseconds its first pass took."""
    per = []
    for r in rows:
        memo = None if memos is None else memos.setdefault(r["path"], Memo())
        result = rec.timed(load_rgb(r["path"]), memo=memo)
        ms = result.ms
        if memo is not None:
            memo.ms = ms = memo.ms if memo.ms is not None else ms
        cards = tuple(CardRecord.from_json(c.to_json()) for c in result.cards)
        outcome, card = photo_outcome(cards, result.no_card, r["card_id"])
        per.append(
            PhotoRecord(
                file=r["path"],
                card_id=r["card_id"],
                notes=r.get("notes", ""),
                groups=tuple(note_groups(r.get("notes", ""))),
                outcome=outcome,
                top1=_top1(cards),
                found=sum(c.found for c in cards),
                fallback=next((c.fallback_reason for c in cards if not c.found), None),
                ms=ms,
                score=card.score if card else None,
                named=card.named if card else None,
                cards=tuple(c.kept(3) for c in cards),
            )
        )
        if progress:
            progress(1)
    return per


def summarise(per: Sequence[PhotoRecord]) -> dict:
    n = len(per)
    counts = {o: sum(p.outcome == o for p in per) for o in OUTCOMES}
    ms = [p.ms for p in per]
    return {
        "photos": n,
        "recall@1": counts[CORRECT] / n if n else 0.0,
        "top1_no_threshold": sum(p.top1 == p.card_id for p in per) / n if n else 0.0,
        "wrong_rate": counts[WRONG] / n if n else 0.0,
        "no_card_rate": counts[NO_CARD] / n if n else 0.0,
        "finder_missed_rate": sum(p.found == 0 for p in per) / n if n else 0.0,
        "fallback_rate": sum(bool(p.fallback) for p in per) / n if n else 0.0,
        "fallback_reasons": {
            r: sum(p.fallback == r for p in per) for r in ("nothing_found", "nothing_recognised")
        },
        "outcomes": counts,
        "ms_p50": float(np.median(ms)) if ms else None,
        "ms_mean": float(np.mean(ms)) if ms else None,
        "ms_p90": float(np.percentile(ms, 90)) if ms else None,
    }
