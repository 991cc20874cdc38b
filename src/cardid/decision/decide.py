"""Decisions, not just neighbours: ``match`` (one card), ``ambiguous`` (several cards within a margin of
the best, e.g. reprints that share their art) or ``unknown`` (nothing scores high enough).

Scores: the embedding cosine alone, or — when verification ran — a fused logit
``w · [cos, hash_sim, sqrt(inliers)/10, lead] + b`` (lead: inlier evidence over the best other
shortlisted card — an unknown card matches nothing well) whose weights are fitted by logistic regression on
labelled queries. Within an ambiguous set the matcher (:mod:`cardid.decision.match`) then compares bottom
strips (collector number, set symbol) and picks one card when that is decisive.

:func:`calibrate` chooses the margin and the unknown-card threshold for a target precision from
labelled queries. Each known query is tried twice: as itself, and with its true card removed from
the DB — the second trial is exactly what an unknown card that resembles the catalogue looks like.
Queries whose card is not in the DB count as unknown trials too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from cardid.errors import CardIDError

MATCH, AMBIGUOUS, UNKNOWN = "match", "ambiguous", "unknown"
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


def fit_fusion(trials: Sequence[tuple[Sequence[Candidate], int | None]], l2: float = 1e-2) -> dict:
    """Logistic regression over (query, shortlisted card) pairs: is this card the query's card?
    Classes are balanced; a little L2 keeps the weights finite on separable data."""
    x, y = [], []
    for cands, truth in trials:
        if truth is None:
            continue
        for c in with_leads(cands):
            x.append(c.features())
            y.append(1.0 if c.row == truth else 0.0)
    y_arr = np.asarray(y)
    if y_arr.sum() == 0 or y_arr.sum() == len(y_arr):
        raise CardIDError(
            "cannot fit score fusion: need queries whose true card is in the shortlist and others"
        )
    xa = np.hstack([np.asarray(x), np.ones((len(x), 1))])
    sw = np.where(y_arr == 1, 0.5 / y_arr.sum(), 0.5 / (len(y_arr) - y_arr.sum()))
    theta = np.zeros(xa.shape[1])
    for _ in range(100):  # Newton steps (IRLS); 4 parameters
        p = 1 / (1 + np.exp(-np.clip(xa @ theta, -30, 30)))
        g = xa.T @ (sw * (p - y_arr)) + l2 * np.r_[theta[:-1], 0]
        h = (xa * (sw * p * (1 - p))[:, None]).T @ xa + l2 * np.diag([1.0] * (len(theta) - 1) + [1e-9])
        step = np.linalg.solve(h, g)
        theta -= step
        if np.abs(step).max() < 1e-8:
            break
    return {"weights": [float(v) for v in theta[:-1]], "bias": float(theta[-1])}


def _outcomes(trials, cal: Calibration) -> tuple[list[str], list[bool]]:
    kinds, correct = [], []
    for cands, truth in trials:
        d = decide(cands, cal)
        kinds.append(d.kind)
        correct.append(truth is not None and any(c.row == truth for c in d.cards))
    return kinds, correct


def evaluate_decisions(trials, cal: Calibration) -> dict:
    """Precision of accepted results (match or ambiguous set holding the truth), recall on known
    queries, match precision, and the decision mix."""
    kinds, correct = _outcomes(trials, cal)
    known = [t is not None for _, t in trials]
    acc = [k != UNKNOWN for k in kinds]
    n_acc = sum(acc)
    matches = [c for k, c in zip(kinds, correct, strict=True) if k == MATCH]
    return {
        "trials": len(trials),
        "known": sum(known),
        "precision": sum(c for a, c in zip(acc, correct, strict=True) if a) / n_acc if n_acc else 1.0,
        "recall": sum(correct) / max(sum(known), 1),
        "match_precision": sum(matches) / len(matches) if matches else 1.0,
        "unknown_rejected": sum(k == UNKNOWN for k, kn in zip(kinds, known, strict=True) if not kn)
        / max(len(known) - sum(known), 1),
        "decisions": {k: kinds.count(k) for k in (MATCH, AMBIGUOUS, UNKNOWN)},
    }


def check_target_precision(p: float) -> None:
    if not 0.0 < p < 1.0:
        raise CardIDError(
            f"target precision must be between 0 and 1 (exclusive), got {p}: "
            "1 or more rejects everything, 0 or less accepts anything"
        )


def calibrate(
    known: Sequence[tuple[Sequence[Candidate], int]],
    unknown: Sequence[Sequence[Candidate]],
    target_precision: float = 0.95,
    mode: str = "embedding",
    max_ambiguous: float = 0.25,
) -> Calibration:
    """Choose fusion weights (``mode="fused"``), the ambiguity margin and the unknown threshold.

    ``known``: shortlists of queries whose card (row) is in the DB; ``unknown``: shortlists of
    queries whose card is not. The margin is the smallest that makes ``match`` decisions reach the
    target precision on known queries (turning near-ties into ambiguous sets), capped so that at most
    ``max_ambiguous`` of them become ambiguous; the threshold is the lowest score at which accepted
    results reach the target precision over known and unknown trials together.
    """
    check_target_precision(target_precision)
    if not known:
        raise CardIDError("calibration needs labelled queries of cards in the DB; none were given")
    if not unknown:
        raise CardIDError("calibration needs unknown-card trials; none were given")
    cal = Calibration(mode=mode, target_precision=target_precision)
    if mode == "fused":
        cal.fusion = fit_fusion(known)
    trials = [(c, t) for c, t in known] + [(c, None) for c in unknown]
    gaps = [0.0]
    for cands, truth in known:
        ranked = score(cands, cal)
        tr = [c.score for c in ranked if c.row == truth]
        if tr and ranked[0].row != truth:
            gaps.append(ranked[0].score - tr[0] + 1e-9)
    gaps = sorted(set(gaps))
    if len(gaps) > 64:  # enough resolution; keeps calibration linear in the number of queries
        gaps = sorted(set(np.quantile(gaps, np.linspace(0, 1, 64)).tolist()))
    for m in gaps:
        ev = evaluate_decisions(known, Calibration(**{**asdict(cal), "margin": m}))
        if ev["decisions"][AMBIGUOUS] > max_ambiguous * len(known):
            break
        cal.margin = m
        if ev["match_precision"] >= target_precision:
            break
    # With the margin fixed, the threshold only gates on the top score: sweep it in one pass.
    open_cal = Calibration(**{**asdict(cal), "threshold": -math.inf})
    rows = []
    for cands, truth in trials:
        d = decide(cands, open_cal)
        ok = truth is not None and any(c.row == truth for c in d.cards)
        rows.append((d.score, ok))
    rows.sort(key=lambda r: -r[0])
    cal.threshold = rows[0][0] + 1e-6 if rows else math.inf  # reject everything unless a threshold works
    n_ok = n = 0
    for i, (s_top, ok) in enumerate(rows):
        n, n_ok = n + 1, n_ok + ok
        last_of_tie = i + 1 == len(rows) or rows[i + 1][0] < s_top
        if last_of_tie and n_ok / n >= target_precision:
            cal.threshold = s_top
    cal.stats = evaluate_decisions(trials, cal)
    cal.stats["reached_target"] = cal.stats["precision"] >= target_precision and cal.stats["recall"] > 0
    return cal
