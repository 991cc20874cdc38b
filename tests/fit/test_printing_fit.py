"""The printing model's fit: weights that recover what separates printings, and one rule for
``p_min`` whether it is chosen on printing sets or on labelled photos."""

import numpy as np
import pytest

from cardid.decision.printing import FEATURES, Evidence, PrintingModel, PrintingSet
from cardid.errors import CardIDError
from cardid.fit.outcomes import AMBIGUOUS_TRUTH, CORRECT, WRONG
from cardid.fit.printing import choose_p_min, fit_printing_model, fit_weights, set_outcomes


def _reprint_sets(n: int, seed: int) -> list[PrintingSet]:
    """Same-art reprints whose strips differ: the truth's strip leads by an amount that shrinks with
    the crop's width while the noise stays; the embedding and inliers cannot tell them apart."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        width = float(rng.choice([150, 190, 230, 280, 360]))
        k = int(rng.integers(2, 4))
        truth = int(rng.integers(k))
        lead = 0.4 * width / 360
        strips = rng.normal(0, 0.12, k) + np.where(np.arange(k) == truth, lead, 0.0)
        members = tuple(
            Evidence(
                f"c{i}-{j}",
                cos=0.8 + rng.normal(0, 0.01),
                inliers=int(rng.integers(40, 60)),
                strip=float(strips[j]),
            )
            for j in range(k)
        )
        out.append(PrintingSet(members, width, truth=f"c{i}-{truth}"))
    return out


def test_the_fit_learns_the_strip_and_its_confidence_falls_with_resolution():
    model = fit_printing_model(_reprint_sets(600, 0), max_wrong=0.02)
    w = dict(zip(FEATURES, model.weights, strict=True))
    assert w["strip"] + w["strip_res"] > 3.0  # the strip is what separates these printings
    assert w["strip_res"] > 0  # … and it is worth more on a large crop
    assert abs(w["emb_lead"]) < 1.0 and abs(w["inlier_lead"]) < 1.0  # noise is worth nothing
    assert model.fitted["sets"] == 600 and 0.5 <= model.p_min <= 0.995
    # the same strip lead, on a small crop and a large one
    pair = (Evidence("x", 0.8, 50, 0.2), Evidence("y", 0.8, 50, -0.2))
    small, large = (model.probabilities(PrintingSet(pair, w))[0] for w in (150, 400))
    assert 0.5 < small < large
    # held-out sets: at its p_min, the model names mostly right and at most a few percent wrong
    test = _reprint_sets(400, 1)
    calls = [model.decide(s) for s in test]
    named = [(c.card_id, s.truth) for c, s in zip(calls, test, strict=True) if c.card_id]
    wrong = sum(a != t for a, t in named)
    assert len(named) > 150 and wrong <= 0.04 * len(test)


def test_one_p_min_rule_the_most_named_right_within_the_wrong_rate():
    """Ten units named by hand: 7 right at 0.96, 2 wrong at 0.85, 1 wrong at 0.98. No wrong name at
    all needs p_min above 0.98 (0.99 of the grid); one in ten allows 0.9; three in ten, the lowest,
    0.5. Nothing labelled: the largest."""
    units = [(0.96, True)] * 7 + [(0.85, False)] * 2 + [(0.98, False)]

    def at(p_min):
        return [(CORRECT if ok else WRONG) if b >= p_min else AMBIGUOUS_TRUTH for b, ok in units]

    assert choose_p_min(at, 0.0) == 0.99
    assert choose_p_min(at, 0.1) == 0.9
    assert choose_p_min(at, 0.3) == 0.5
    assert choose_p_min(lambda p: [], 0.0) == 0.995
    # photos need not be monotone (a wrong extra match can vanish at a higher p_min): the rule
    # takes the most right, not the smallest within the rate
    by_p = {0.5: [CORRECT] * 5 + [AMBIGUOUS_TRUTH], 0.6: [CORRECT] * 6}
    assert choose_p_min(lambda p: by_p.get(p, [AMBIGUOUS_TRUTH] * 6), 0.0) == 0.6


def test_a_printing_set_at_a_p_min_is_right_wrong_or_left_ambiguous():
    class Fixed:  # what set_outcomes reads of a model: each set's probabilities
        def probabilities(self, s):
            return np.array(PROBS[id(s)])

    pair = (Evidence("a", 0.5), Evidence("b", 0.5))
    sets = [PrintingSet(pair, 300, truth="a") for _ in range(3)] + [PrintingSet(pair, 300)]
    PROBS = {
        id(s): p for s, p in zip(sets, [[0.96, 0.04], [0.15, 0.85], [0.55, 0.45], [0.9, 0.1]], strict=True)
    }
    at = set_outcomes(Fixed(), sets)  # the unlabelled set is left out
    assert at(0.5) == [CORRECT, WRONG, CORRECT]
    assert at(0.9) == [CORRECT, AMBIGUOUS_TRUTH, AMBIGUOUS_TRUTH]
    assert at(0.99) == [AMBIGUOUS_TRUTH] * 3
    assert choose_p_min(at, 0.0) == 0.9


def test_a_fitted_model_round_trips_and_a_set_without_its_truth_cannot_teach():
    model = fit_printing_model(_reprint_sets(100, 3), source="test")
    back = PrintingModel.from_dict(model.to_dict())
    assert back.weights == model.weights and back.p_min == model.p_min and back.fitted["source"] == "test"
    assert back.fitted["sets"] == 100 and back.fitted["max_wrong"] == 0.01
    with pytest.raises(CardIDError, match="no set of two or more"):
        fit_weights([PrintingSet((Evidence("a", 0.8), Evidence("b", 0.7)), 200, truth="z")])
