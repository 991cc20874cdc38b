"""The printing model, fitted: its weights on labelled printing sets (simulated views, and the
printing sets of labelled real photos' records where there are some) and its ``p_min`` by one rule,
:func:`choose_p_min`. What it decides with is :mod:`cardid.decision.printing`; the one writer of
the fitted model into a DB is :func:`cardid.fit.calibrate.store_printing_model`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np

from cardid.decision.decide import AMBIGUOUS, MATCH
from cardid.decision.printing import FEATURES, PrintingModel, PrintingSet
from cardid.errors import CardIDError
from cardid.fit.outcomes import AMBIGUOUS_TRUTH, CORRECT, WRONG, photo_outcome
from cardid.fit.records import Named, PhotoRecord

#: probabilities tried for ``p_min``
P_MINS = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99, 0.995)


def _usable(s: PrintingSet) -> bool:
    """Whether a set can teach which printing it is: two or more printings, the truth among them."""
    return len(s.members) >= 2 and s.truth in {m.card_id for m in s.members}


def fit_weights(
    sets: Sequence[PrintingSet],
    l2: float = 1e-3,
    iters: int = 100,
    set_weights: Sequence[float] | None = None,
) -> np.ndarray:
    """Conditional-logit weights by Newton's method (each set: softmax over its members, the truth
    the target; a little L2 keeps separable data finite), each set counted ``set_weights`` times
    (e.g. to give real photos as much say as many more simulated views). Sets whose truth is not a
    member say nothing about which member it is and are skipped."""
    sw = [1.0] * len(sets) if set_weights is None else [float(v) for v in set_weights]
    if len(sw) != len(sets):
        raise CardIDError(f"{len(sets)} printing sets but {len(sw)} weights")
    xs, ts, ws = [], [], []
    for s, v in zip(sets, sw, strict=True):
        if _usable(s):
            xs.append(s.features())
            ts.append([m.card_id for m in s.members].index(s.truth))
            ws.append(v)
    if not xs:
        raise CardIDError("cannot fit a printing model: no set of two or more printings holds its truth")
    w = np.zeros(len(FEATURES))
    total = float(sum(ws))
    for _ in range(iters):
        g = l2 * w * total
        h = l2 * np.eye(len(w)) * total
        for x, t, v in zip(xs, ts, ws, strict=True):
            z = x @ w
            p = np.exp(z - z.max())
            p /= p.sum()
            mean = p @ x
            g += v * (mean - x[t])
            xc = x - mean
            h += v * (xc * p[:, None]).T @ xc
        step = np.linalg.solve(h + 1e-9 * np.eye(len(w)), g)
        w -= step
        if np.abs(step).max() < 1e-7:
            break
    return w


def choose_p_min(outcomes_at: Callable[[float], Sequence[str]], max_wrong: float) -> float:
    """The one rule for ``p_min``: of :data:`P_MINS`, the one naming the most right with at most
    ``max_wrong`` of the units wrong (the smallest of equals); the largest tried when none keeps
    within, or nothing is labelled. ``outcomes_at(p_min)``: each unit's outcome at that ``p_min``
    (:data:`~cardid.fit.outcomes.CORRECT`, ``WRONG`` or another): a labelled printing set's
    (:func:`set_outcomes`) or a labelled photo's, its record re-decided (:func:`photo_outcomes`)."""
    best = None
    for p_min in P_MINS:
        o = list(outcomes_at(p_min))
        if not o:
            break
        right, wrong = o.count(CORRECT), o.count(WRONG)
        if wrong <= max_wrong * len(o) and (best is None or right > best[1]):
            best = (p_min, right)
    return best[0] if best else max(P_MINS)


def set_outcomes(model: PrintingModel, sets: Sequence[PrintingSet]) -> Callable[[float], list[str]]:
    """Each labelled set's outcome at a ``p_min``: its truth named (``correct``), another printing
    named (``wrong``), or left ambiguous."""
    labelled = [s for s in sets if s.truth is not None]
    probs = [model.probabilities(s) for s in labelled]
    best = [float(p.max()) for p in probs]
    named = [s.members[int(np.argmax(p))].card_id for s, p in zip(labelled, probs, strict=True)]

    def at(p_min: float) -> list[str]:
        return [
            (CORRECT if n == s.truth else WRONG) if b >= p_min else AMBIGUOUS_TRUTH
            for b, n, s in zip(best, named, labelled, strict=True)
        ]

    return at


def photo_outcomes(model: PrintingModel, records: Sequence[PhotoRecord]) -> Callable[[float], list[str]]:
    """Each labelled photo's outcome at a ``p_min``, its record re-decided by ``model`` (a wrong
    card counts as wrong as much as a wrong printing)."""
    return lambda p_min: [redecide_printing(p, model, p_min).outcome for p in records]


def fit_printing_model(
    sets: Sequence[PrintingSet], max_wrong: float = 0.01, l2: float = 1e-3, **fitted
) -> PrintingModel:
    """Weights (:func:`fit_weights`) and ``p_min`` (:func:`choose_p_min` on the same sets) from
    labelled printing sets, e.g. simulated views of every card with another printing."""
    model = PrintingModel([float(v) for v in fit_weights(sets, l2)])
    model.p_min = choose_p_min(set_outcomes(model, sets), max_wrong)
    model.fitted = {"sets": sum(map(_usable, sets)), "max_wrong": max_wrong, "l2": l2, **fitted}
    return model


def redecide_printing(p: PhotoRecord, model: PrintingModel, p_min: float | None = None) -> PhotoRecord:
    """A photo's record had the printing been decided by ``model`` (at ``p_min``, else its own): from
    the printing sets its card records keep (each printing's evidence). Returns the record with its
    ``outcome`` and ``named`` card replaced."""
    cards = []
    for c in p.cards:
        s = c.printing()
        if s is not None:
            call = model.decide(s, p_min)
            if call.card_id is not None:
                c = c.redecided(MATCH, Named(call.card_id))
            else:
                c = c.redecided(AMBIGUOUS, between=[Named(x) for x in call.plausible])
        cards.append(c)
    outcome, card = photo_outcome(cards, p.no_card, p.card_id)
    return replace(p, cards=tuple(cards), outcome=outcome, named=card.named if card else None)


def real_printing_sets(per: Sequence[PhotoRecord]) -> list[PrintingSet]:
    """The printing sets of labelled photos' card records, each with the photo's card as its truth."""
    return [s for p in per for c in p.cards if (s := c.printing(p.card_id)) is not None]


def fit_on_photos(
    fit: Sequence[PhotoRecord], simulated: list[PrintingSet], max_wrong: float = 0.01
) -> PrintingModel:
    """The printing model fitted on ``simulated`` printing sets plus the printing sets of labelled
    photos' records ``fit`` (weighing as much as all the simulated ones together), its ``p_min`` by
    the one rule on those photos (what a user sees: a wrong card or a wrong printing). What each
    fold of :func:`cardid.fit.refit.fit_printing_folds` fits on the other folds' photos, and what
    `cardid index adapt` fits on all of them."""
    real = real_printing_sets(fit)
    # the real photos (fewer) weigh as much as the simulated views together
    weights = [1.0] * len(simulated) + [max(len(simulated), 1) / max(len(real), 1)] * len(real)
    try:
        model = PrintingModel([float(w) for w in fit_weights([*simulated, *real], set_weights=weights)])
    except CardIDError:  # nothing to fit on (no printing set holds its truth): the hand-set model
        model = PrintingModel()
    model.p_min = choose_p_min(photo_outcomes(model, fit), max_wrong)
    model.fitted = {"simulated_sets": len(simulated), "real_sets": len(real), "real_photos": len(fit)}
    return model
