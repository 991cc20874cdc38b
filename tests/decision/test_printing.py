"""The printing model: features relative to the other printings, a fit that recovers what separates
printings, confidence that falls with resolution, a strip that never decides across art."""

import math

import numpy as np
import pytest

from cardid.decision.printing import (
    FEATURES,
    Evidence,
    PrintingModel,
    PrintingSet,
    choose_p_min,
    fit_printing_model,
    fit_weights,
)
from cardid.errors import CardIDError

F = {f: i for i, f in enumerate(FEATURES)}


def test_features_are_each_cue_relative_to_the_best_other_printing():
    s = PrintingSet(
        (
            Evidence("a", cos=0.90, inliers=100, strip=0.3, number=1.0),
            Evidence("b", cos=0.85, inliers=64, strip=-0.1, number=-1.0),
            Evidence("c", cos=0.80, inliers=0, strip=None),
        ),
        width=200,
    )
    x = s.features()
    assert x.shape == (3, len(FEATURES))
    np.testing.assert_allclose(x[:, F["emb_lead"]], [0.5, -0.5, -1.0])
    np.testing.assert_allclose(x[:, F["emb_lead_res"]], [0.25, -0.25, -0.5])  # 200 px of 400
    np.testing.assert_allclose(x[:, F["inlier_lead"]], [0.2, -0.2, -1.0])  # (10-8)/10, (8-10)/10, (0-10)/10
    # the strip only demotes within the compared (same-art) group; c was not compared: 0
    np.testing.assert_allclose(x[:, F["strip"]], [0.0, -0.4, 0.0])
    np.testing.assert_allclose(x[:, F["number"]], [1.0, -1.0, 0.0])


def test_a_strip_never_promotes_a_printing_over_one_whose_art_differs():
    """Two same-art printings (strips compared) and a same-name card with other art that the
    inliers favour: however strong a strip lead, the other-art card keeps its lead."""
    model = PrintingModel([0, 0, 3.0, 50.0, 50.0, 0])
    s = PrintingSet(
        (
            Evidence("same-a", cos=0.8, inliers=25, strip=0.9),
            Evidence("same-b", cos=0.8, inliers=25, strip=-0.9),
            Evidence("other-art", cos=0.8, inliers=100, strip=None),
        ),
        width=400,
    )
    p = model.probabilities(s)
    assert p.argmax() == 2 and p[0] < p[2]
    assert model.leading_cue(s, "other-art") == "art"


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


def test_p_min_is_the_smallest_probability_that_keeps_wrong_names_rare():
    """Ten sets whose probabilities are set by hand: 7 named right at 0.96, 2 wrong at 0.85, 1
    wrong at 0.98. No wrong name at all needs p_min above 0.98 (0.99 of the grid); one in ten
    allows 0.9; three in ten, the lowest, 0.5."""

    class Fixed:  # what choose_p_min reads of a model: each set's probabilities
        def probabilities(self, s):
            return np.array(PROBS[id(s)])

    pair = (Evidence("a", 0.5), Evidence("b", 0.5))
    sets = [PrintingSet(pair, 300, truth="a") for _ in range(10)]
    PROBS = {
        id(s): p for s, p in zip(sets, [[0.96, 0.04]] * 7 + [[0.15, 0.85]] * 2 + [[0.02, 0.98]], strict=True)
    }
    assert choose_p_min(Fixed(), sets, 0.0) == 0.99
    assert choose_p_min(Fixed(), sets, 0.1) == 0.9
    assert choose_p_min(Fixed(), sets, 0.3) == 0.5
    assert choose_p_min(Fixed(), [PrintingSet(pair, 300)], 0.0) == 0.995  # nothing labelled: the largest


def test_decide_names_a_printing_or_keeps_the_plausible_set():
    model = PrintingModel([0, 0, 0, 10.0, 0, 4.0], p_min=0.9)
    sure = PrintingSet((Evidence("a", 0.8, 50, 0.5, 1.0), Evidence("b", 0.8, 50, -0.5, -1.0)), 300)
    call = model.decide(sure)
    assert call.card_id == "a" and call.probability > 0.99 and call.plausible == ("a",)
    assert model.leading_cue(sure, "a") == "strip"
    unsure = PrintingSet(
        (Evidence("a", 0.8, 50, 0.05), Evidence("b", 0.8, 50, 0.0), Evidence("c", 0.8, 50, -0.9)), 300
    )
    call = model.decide(unsure)
    assert call.card_id is None and call.plausible == ("a", "b")  # c is implausible: left out
    # only the strip weighs (10 per unit): leads 0, -0.05, -0.95 → softmax of 0, -0.5, -9.5
    ea, eb, ec = 1.0, math.exp(-0.5), math.exp(-9.5)
    want = {"a": ea / (ea + eb + ec), "b": eb / (ea + eb + ec), "c": ec / (ea + eb + ec)}
    assert call.probabilities == pytest.approx({k: round(v, 4) for k, v in want.items()}, abs=1e-4)


def test_round_trip_and_bad_input():
    model = fit_printing_model(_reprint_sets(100, 3), source="test")
    back = PrintingModel.from_dict(model.to_dict())
    assert back.weights == model.weights and back.p_min == model.p_min and back.fitted["source"] == "test"
    s = _reprint_sets(1, 4)[0]
    assert PrintingSet.from_dict(s.to_dict(), s.truth).members[0].card_id == s.members[0].card_id
    with pytest.raises(CardIDError, match="6 weights"):
        PrintingModel([1.0, 2.0])
    with pytest.raises(CardIDError, match="not this version"):
        PrintingModel.from_dict({**model.to_dict(), "features": ["cos"]})
    with pytest.raises(CardIDError, match="malformed printing set"):
        PrintingSet.from_dict({"members": [{"cos": 1}]})
    with pytest.raises(CardIDError, match="twice"):
        PrintingSet((Evidence("a", 0.8), Evidence("a", 0.7)), 200)
    with pytest.raises(CardIDError, match="no set of two or more"):
        fit_weights([PrintingSet((Evidence("a", 0.8), Evidence("b", 0.7)), 200, truth="z")])
