"""Decisions, not just neighbours: ``match`` (one card), ``ambiguous`` (several cards within a margin of
the best, e.g. reprints that share their art) or ``unknown`` (nothing scores high enough).

Scores: the embedding cosine alone, or — when verification ran — a fused logit
``w · [cos, hash_sim, sqrt(inliers)/10, lead] + b`` (lead: inlier evidence over the best other
shortlisted card — an unknown card matches nothing well) whose weights are fitted by logistic regression on
labelled queries (:mod:`cardid.fit.fusion`, which also chooses the margin and the unknown-card
threshold). Within an ambiguous set the matcher (:mod:`cardid.decision.match`) then compares bottom
strips (collector number, set symbol) and picks one card when that is decisive.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from cardid.errors import CardIDError

MATCH, AMBIGUOUS, UNKNOWN = "match", "ambiguous", "unknown"
#: a card seen from the back (:mod:`cardid.db.backs`): not a card to name, never an unknown one
BACK = "back"
#: verified inliers count as ``sqrt(inliers) / INLIER_SCALE`` everywhere (fused score, leads, the
#: verifier's early stop, the printing model): a lead of 0.3 is 13 against 4 inliers, or 100 against 49
INLIER_SCALE = 10.0
#: Hand-set fusion used until a DB is calibrated: inliers dominate, the embedding breaks ties.
DEFAULT_FUSION = {"weights": [4.0, 2.0, 4.0, 6.0], "bias": -8.0}


def inlier_evidence(inliers: int | None) -> float:
    """Verified inliers on the scale every score uses (0 when not verified)."""
    return math.sqrt(inliers or 0) / INLIER_SCALE


def inlier_lead(inliers: float, other: float) -> float:
    """How far ``inliers`` leads ``other`` on that scale (roots subtracted first, then scaled)."""
    return (math.sqrt(inliers) - math.sqrt(other)) / INLIER_SCALE


@dataclass(frozen=True)
class Candidate:
    """One shortlisted card and its evidence. Frozen: a refinement returns new candidates
    (:func:`dataclasses.replace`), so a decision never changes one another decision holds."""

    row: int
    card_id: str
    cos: float
    hash_sim: float
    inliers: int | None = None
    strip: float | None = None  # bottom-strip agreement, filled when it had to separate reprints
    score: float = 0.0
    lead: float = 0.0  # sqrt(inliers) minus that of the best other shortlisted card, /10
    verified: bool = False  # geometric verification ran for this card (else inliers count as 0)

    def features(self) -> list[float]:
        return [self.cos, self.hash_sim, inlier_evidence(self.inliers), self.lead]


def with_leads(cands: Sequence[Candidate]) -> list[Candidate]:
    """The candidates with their verification evidence relative to the competition: an unknown
    card matches nothing well, a known one stands out; reprints that share the art tie (lead ≈ 0)."""
    roots = [math.sqrt(c.inliers or 0) for c in cands]
    out = []
    for i, c in enumerate(cands):
        others = max((r for j, r in enumerate(roots) if j != i), default=0.0)
        out.append(replace(c, lead=(roots[i] - others) / INLIER_SCALE))
    return out


@dataclass
class Calibration:
    mode: str = "embedding"  # "embedding" (score = cosine) or "fused" (score = fused logit)
    threshold: float = -math.inf
    margin: float = 0.0
    # the bottom strip names a printing when it leads every other by this much. On photos-dev's
    # ~224 px crops the strip was right 723 times and wrong 29 at a 0.2 lead, 669 and 14 at 0.25:
    # a wrong printing is the costlier error, so 0.25 (the number, when legible, decides first)
    strip_margin: float = 0.25
    fusion: dict = field(default_factory=lambda: dict(DEFAULT_FUSION))
    #: the printing model's weights and p_min (:class:`cardid.decision.printing.PrintingModel`), fitted
    #: with the fused calibration; None: its hand-set defaults
    printing: dict | None = None
    target_precision: float | None = None
    stats: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["threshold"] = None if math.isinf(self.threshold) else self.threshold
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Calibration:
        try:
            d = dict(d)
            d["threshold"] = -math.inf if d.get("threshold") is None else float(d["threshold"])
            cal = cls(**d)
            w = cal.fusion["weights"]
            float(cal.fusion["bias"]), [float(x) for x in w], float(cal.margin)
        except (TypeError, ValueError, KeyError) as e:
            raise CardIDError(
                f"stored calibration is malformed ({e}); re-run `cardid index calibrate`"
            ) from e
        return cal


@dataclass(frozen=True)
class Decision:
    kind: str
    cards: list[Candidate]  # the match, or every card of the ambiguous set; empty when unknown
    score: float
    candidates: list[Candidate]  # the ranked shortlist
    #: what named the printing: "strip" / "number" (rules), or the printing model's leading cue
    #: ("art": embedding and inliers, "strip", "number")
    resolved_by: str | None = None
    #: what was read off the card's bottom strip (`cardid.printing`) and whether it agreed with
    #: the decision; None when nothing was read (no doubt about the printing, or no OCR)
    printed: dict | None = None
    #: the printing's probability (:mod:`cardid.decision.printing`) when the card has several
    #: printings in sight; ``printing``: the set weighed, each member's evidence and probability
    probability: float | None = None
    printing: dict | None = None

    @property
    def card_id(self) -> str | None:
        return self.cards[0].card_id if self.kind == MATCH else None


def score(cands: Sequence[Candidate], cal: Calibration) -> list[Candidate]:
    """The candidates scored (and, fused, with their leads), best first: new candidates."""
    fused = cal.mode == "fused" and all(c.inliers is not None for c in cands)
    w, b = np.asarray(cal.fusion["weights"], np.float64), float(cal.fusion["bias"])
    if fused:
        scored = [replace(c, score=float(np.dot(w, c.features()) + b)) for c in with_leads(cands)]
    else:
        scored = [replace(c, score=c.cos) for c in cands]
    return sorted(scored, key=lambda c: -c.score)


def decide(cands: Sequence[Candidate], cal: Calibration) -> Decision:
    ranked = score(cands, cal)
    if not ranked or ranked[0].score < cal.threshold:
        return Decision(UNKNOWN, [], ranked[0].score if ranked else -math.inf, ranked)
    best = ranked[0].score
    tied = [c for c in ranked if c.score >= best - cal.margin]
    if len(tied) == 1:
        return Decision(MATCH, tied, best, ranked)
    return Decision(AMBIGUOUS, tied, best, ranked)
