"""What the decision's scores are fitted to: the fusion weights and the calibration's margin and
unknown-card threshold, from labelled queries (:func:`calibrate`).

Each known query is tried twice: as itself, and with its true card removed from the DB — the second
trial is exactly what an unknown card that resembles the catalogue looks like. Queries whose card is
not in the DB count as unknown trials too. The decision these settle is :mod:`cardid.decision.decide`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict

import numpy as np

from cardid.decision.decide import (
    AMBIGUOUS,
    MATCH,
    UNKNOWN,
    Calibration,
    Candidate,
    decide,
    score,
    with_leads,
)
from cardid.errors import CardIDError


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


def check_target_precision(p: float) -> None:
    if not 0.0 < p < 1.0:
        raise CardIDError(
            f"target precision must be between 0 and 1 (exclusive), got {p}: "
            "1 or more rejects everything, 0 or less accepts anything"
        )
