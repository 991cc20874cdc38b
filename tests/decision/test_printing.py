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


def test_records_round_trip_and_bad_input():
    model = PrintingModel([1.0, 0.5, 3.0, 8.0, 12.0, 4.0], 0.93, {"source": "test"})
    back = PrintingModel.from_dict(model.to_dict())
    assert back.weights == model.weights and back.p_min == 0.93 and back.fitted["source"] == "test"
    s = PrintingSet((Evidence("a", 0.8, 40, 0.1, 1.0), Evidence("b", 0.7, 30, -0.1)), 250, truth="a")
    again = PrintingSet.from_dict(s.to_dict(), s.truth)
    assert again.members == s.members and again.width == 250 and again.truth == "a"
    with pytest.raises(CardIDError, match="6 weights"):
        PrintingModel([1.0, 2.0])
    with pytest.raises(CardIDError, match="not this version"):
        PrintingModel.from_dict({**model.to_dict(), "features": ["cos"]})
    with pytest.raises(CardIDError, match="malformed printing set"):
        PrintingSet.from_dict({"members": [{"cos": 1}]})
    with pytest.raises(CardIDError, match="twice"):
        PrintingSet((Evidence("a", 0.8), Evidence("a", 0.7)), 200)
