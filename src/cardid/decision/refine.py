"""The steps that decide a known card's printing, each ``(matcher, query, decision) → decision``.

:meth:`cardid.decision.match.Matcher.steps` lists them in the order they run. Each returns a new
:class:`~cardid.decision.decide.Decision` (or the one it was given) and never changes a candidate
another decision holds: candidates are frozen, and evidence found on the way (a printing verified
now, a strip compared) comes back in new candidates, replaced in the decision's shortlist too.

* :func:`printing` — the printing model (default): every printing of the card in sight, one
  calibrated probability each (:mod:`cardid.decision.printing`).
* :func:`printings`, :func:`by_number`, :func:`resolve` — the rules it replaced, kept to compare
  on the same photos: a match with a same-art printing beside it becomes ambiguous, the collector
  number then names one, else the bottom strips do by a margin.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from cardid.db.art import similar_scans
from cardid.db.verify import strip_scores, warp_strip
from cardid.decision.decide import AMBIGUOUS, MATCH, Candidate, Decision
from cardid.decision.printing import Evidence, PrintingSet
from cardid.decision.query import Matching, Query
from cardid.printing.number import agrees
from cardid.printing.ocr import PrintedReading, layout_of

#: another printing verified only now (early stop skipped it, or the shortlist missed it)
#: joins the set when its art matches this well: ≥ this share of the match's inliers …
SIBLING_INLIER_SHARE = 0.4
#: … and at least this many
SIBLING_MIN_INLIERS = 15
#: printings of the card outside the shortlist that are verified, nearest by embedding first
SIBLING_OUTSIDE = 3


def _fused(m: Matching, q: Query) -> bool:
    return q.features is not None and m.calibration.mode == "fused"


def _with(d: Decision, new: list[Candidate], **changes) -> Decision:
    """``d`` with ``new`` candidates replacing their rows in its cards and shortlist."""
    by_row = {c.row: c for c in new}
    return replace(
        d,
        cards=[by_row.get(c.row, c) for c in d.cards],
        candidates=[by_row.get(c.row, c) for c in d.candidates],
        **changes,
    )


# --- evidence -------------------------------------------------------------------------------


def unverified_printings(
    m: Matching, q: Query, top: Candidate, d: Decision, seen: set[int], printings: set[int]
) -> list[Candidate]:
    """Same-art printings of the match that verification has not looked at (early stop ended
    before them, or they were not shortlisted): verified now, kept (as new candidates) when
    their art matches."""
    by_row = {c.row: c for c in d.candidates}
    rows = [r for r in m.db.printings_of(top.row) if r in printings and r != top.row and r not in seen]
    inside = [r for r in rows if r in by_row and not by_row[r].verified]
    outside = sorted(
        (r for r in rows if r not in by_row),
        key=lambda r: -float(m.db.embeddings[r] @ q.embedding),
    )[:SIBLING_OUTSIDE]
    need = max(SIBLING_MIN_INLIERS, SIBLING_INLIER_SHARE * (top.inliers or 0))
    out = []
    for r in inside + outside:
        v = m.verify(q, r)
        if v.homography is None or v.inliers < need:
            continue
        c = by_row.get(r) or Candidate(
            r, m.db.ids[r], float(m.db.embeddings[r] @ q.embedding), float(q.hash_sims[r])
        )
        out.append(replace(c, inliers=v.inliers, verified=True))
    return out


def strip_leads(m: Matching, q: Query, cards: list[Candidate]) -> dict[int, float]:
    """Bottom-strip leads among same-art cards verified against the crop (their homographies
    place the strip), compared at the crop's own resolution."""
    cards = [c for c in cards if c.row in q.cache and q.cache[c.row].homography is not None]
    if len(cards) < 2:
        return {}
    feats = m.db.features
    warped = [warp_strip(q.features, q.cache[c.row].homography, feats.cfg) for c in cards]
    scale = q.image.shape[1] / feats.cfg.strip_width if q.image is not None else 1.0
    scores = strip_scores(warped, [np.asarray(feats.strips[c.row]) for c in cards], scale=scale)
    return {} if scores is None else {c.row: s for c, s in zip(cards, scores, strict=True)}


def read_number(m: Matching, q: Query, rows: list[int]) -> tuple[PrintedReading, dict, list[int], bool]:
    """Read the collector number off the crop for these DB rows: (the reading, its record with
    ``agreeing`` ids, the rows it agrees with, whether only loosely — a total one digit off
    counts only when nothing agrees exactly)."""
    members = [m.db.records[m.db.ids[r]] for r in rows]
    layouts = tuple(sorted({k for x in members for k in layout_of(x.series)}))
    reading = m.reader(q.image, layouts, accept=lambda x: any(agrees(x, c) for c in members))
    printed = reading.to_dict()
    for loose in (False, True):
        agreeing = [
            r
            for r, rec in zip(rows, members, strict=True)
            if any(agrees(x, rec, loose_total=loose) for x in reading.readings)
        ]
        if agreeing:
            break
    printed["agreeing"] = [m.db.ids[r] for r in agreeing]
    return reading, printed, agreeing, loose


def number_evidence(m: Matching, q: Query, cards: list[Candidate]) -> tuple[dict[int, float], dict | None]:
    """The collector number read off the crop, as evidence for each card: +1 it agrees, +0.5
    agrees but for a total one off, -1 legible and another card agrees but not this one."""
    if m.reader is None or q.image is None or not m.config.read_numbers:
        return {}, None
    reading, printed, agreeing, loose = read_number(m, q, [c.row for c in cards])
    if not reading.legible or not agreeing:  # a misread must not cost a right answer
        return {}, printed
    hit = 0.5 if loose else 1.0
    return {c.row: hit if c.row in agreeing else -1.0 for c in cards}, printed


# --- the printing model -----------------------------------------------------------------------


def printing_set(
    m: Matching, q: Query, d: Decision
) -> tuple[PrintingSet, list[Candidate], dict | None, Decision] | None:
    """The printings of the decided card in sight of the crop, with their evidence: the match
    (or the tied set), every same-name card the shortlist verified (whatever its art), and
    same-art printings verified now; the strip compared between those sharing the leader's art,
    the number read where legible. Returns (the set, its members, the number's record, ``d``
    with the printings verified now in its shortlist); None when there is one printing only."""
    if d.kind not in (MATCH, AMBIGUOUS) or not _fused(m, q):
        return None
    top = d.cards[0]
    named = set(m.db.printings_of(top.row))
    cands = {c.row: c for c in d.cards}
    for c in d.candidates:
        if c.row not in cands and c.verified and c.row in named:
            cands[c.row] = c
    same_art = {r for r in named if not m.art.differs(top.row, r)}
    found = unverified_printings(m, q, top, d, set(cands), same_art)
    for c in found:
        cands[c.row] = c
    if len(cands) < 2:
        return None
    d = _with(d, found)
    members = list(cands.values())
    strips = strip_leads(m, q, [c for c in members if not m.art.differs(top.row, c.row)])
    numbers, printed = number_evidence(m, q, members)
    width = float(q.image.shape[1]) if q.image is not None else m.db.features.cfg.strip_width
    if q.raw_embedding is not None:  # the adapter finds the card; the printing is weighed without it
        cos = {c.row: float(m.db.embeddings[c.row] @ q.raw_embedding) for c in members}
    else:
        cos = {c.row: c.cos for c in members}
    evidence = tuple(
        Evidence(c.card_id, cos[c.row], int(c.inliers or 0), strips.get(c.row), numbers.get(c.row, 0.0))
        for c in members
    )
    return PrintingSet(evidence, width), members, printed, d


def printing(m: Matching, q: Query, d: Decision) -> Decision:
    """The printing of a decided card, by the printing model: the printing named with its
    probability when that reaches the model's ``p_min``, else ``ambiguous`` between the
    printings still plausible. A card with one printing in sight is left as decided."""
    found = printing_set(m, q, d)
    if found is None:
        return d
    s, members, printed, d = found
    call = m.printing_model.decide(s)
    by_id = {c.card_id: c for c in members}
    record = s.to_dict()
    for x in record["members"]:
        x["p"] = call.probabilities[x["card_id"]]
    if printed is not None:
        legible = bool(printed["readings"]) and call.card_id is not None
        printed["agrees"] = call.card_id in printed["agreeing"] if legible else None
    common = dict(score=d.score, candidates=d.candidates, printed=printed, probability=call.probability)
    if call.card_id is None:
        return Decision(AMBIGUOUS, [by_id[c] for c in call.plausible], printing=record, **common)
    cue = m.printing_model.leading_cue(s, call.card_id)
    return Decision(MATCH, [by_id[call.card_id]], resolved_by=cue, printing=record, **common)


# --- the rules (printing="rules") ---------------------------------------------------------------


def printings(m: Matching, q: Query, d: Decision) -> Decision:
    """A match whose shortlist also holds another printing of the same card (same name and
    art, also verified) is not yet a decision: art confirms the Pokémon, not the printing. A
    same-name card with other art (Fossil's Gastly beside base1's) is not a printing of it:
    the art, which the match was decided on, tells them apart. The set goes to the number
    (:func:`by_number`) and the strips (:func:`resolve`), which name one printing or say
    ``ambiguous`` — never the confident wrong printing that art alone gives (on real listing
    photos, base1 vs its Evolutions reprint: 16 % of same-name cases wrong by art, 2.5 % after)."""
    if d.kind != MATCH or not _fused(m, q):
        return d
    top = d.cards[0]
    same = m.art.printings(top.row)
    siblings = [c for c in d.candidates if c.row != top.row and c.verified and c.row in same]
    found = unverified_printings(m, q, top, d, {c.row for c in siblings}, same)
    if not siblings and not found:  # verified ones only: their homographies (in q.cache) place the strips
        return d
    d = _with(d, found)
    return Decision(AMBIGUOUS, [top, *siblings, *found], d.score, d.candidates)


def by_number(m: Matching, q: Query, d: Decision) -> Decision:
    """Where the printing is in doubt, read the collector number off the crop and let it decide.

    In doubt: an ambiguous set, or a match with another printing (same name) in its shortlist or
    sharing its art. An ambiguous set is resolved when exactly one member agrees with what was
    read; a match whose number names exactly one other printing of the card becomes that
    printing; a match the reading contradicts while no printing agrees stays a match, flagged
    (``agrees: false``): a misread must not cost a right answer. Nothing legible: the decision
    as it was, with the reason recorded."""
    if m.reader is None or q.image is None or d.kind not in (MATCH, AMBIGUOUS):
        return d
    if d.kind == AMBIGUOUS:
        group = [c.row for c in d.cards]
    else:
        top_row = d.cards[0].row
        rows = m.db.printings_of(top_row)
        if len(rows) < 2:
            return d  # one printing of this card: nothing to tell apart
        # in doubt only against printings that could look like it: in the shortlist, or
        # sharing its art (a Pikachu has a hundred printings, most with art of their own)
        near = {c.row for c in d.candidates}
        if m.db.features is not None:
            near |= set(similar_scans(m.db, top_row, rows))
        group = [r for r in rows if r == top_row or r in near]
        if len(group) < 2:
            return d
    reading, printed, agreeing, _ = read_number(m, q, group)
    if not reading.legible:
        return replace(d, printed={**printed, "agrees": None})
    if d.kind == AMBIGUOUS:
        printed["agrees"] = len(agreeing) == 1
        if len(agreeing) == 1:
            card = next(c for c in d.cards if c.row == agreeing[0])
            return Decision(MATCH, [card], d.score, d.candidates, resolved_by="number", printed=printed)
        return replace(d, printed=printed)
    top = d.cards[0]
    printed["agrees"] = top.row in agreeing
    if top.row not in agreeing and len(agreeing) == 1 and _sure(m, reading, agreeing[0], d):
        row = agreeing[0]
        card = next((c for c in d.candidates if c.row == row), None)
        if card is None:  # a printing the shortlist missed: same art, its own number
            emb = float(m.db.embeddings[row] @ q.embedding)
            card = Candidate(row, m.db.ids[row], emb, 0.0, score=top.score)
        return Decision(MATCH, [card], d.score, d.candidates, resolved_by="number", printed=printed)
    return replace(d, printed=printed)


def _sure(m: Matching, reading: PrintedReading, row: int, d: Decision) -> bool:
    """Enough to move a match to another printing: that printing was verified against the
    crop (same art), or both the number and the printed total agree with it."""
    if any(c.row == row and c.verified and (c.inliers or 0) > 0 for c in d.candidates):
        return True
    rec = m.db.records[m.db.ids[row]]
    if rec.set_total is None:
        return False
    return any(x.total is not None and agrees(x, rec) for x in reading.readings)  # exact, not loose


def resolve(m: Matching, q: Query, d: Decision) -> Decision:
    """An ambiguous set of verified cards (same art): let the bottom strips decide, comparing
    the query only where those cards' strips differ (collector number, set symbol); the one
    leading every other by the calibration's ``strip_margin`` is named. A set holding a card
    whose art differs from the leader's stays ambiguous: art is judged by the embedding and the
    verifier, which left it in doubt, never by a strip."""
    if d.kind != AMBIGUOUS or not _fused(m, q):
        return d
    if any(m.art.differs(d.cards[0].row, c.row) for c in d.cards[1:]):
        return d
    if any(c.row not in q.cache or q.cache[c.row].homography is None for c in d.cards):
        return d
    strips = strip_leads(m, q, d.cards)
    if not strips:  # the printings do not differ where we look: truly ambiguous
        return d
    scored = [replace(c, strip=strips[c.row]) for c in d.cards]
    d = _with(d, scored)
    best = max(scored, key=lambda c: c.strip)
    if best.strip >= m.calibration.strip_margin:  # it beats every other card by the margin
        return Decision(MATCH, [best], d.score, d.candidates, resolved_by="strip", printed=d.printed)
    return d
