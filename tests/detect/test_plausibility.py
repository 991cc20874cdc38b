"""A quad's plausibility as one card: each property worked out by hand on simple shapes."""

import math

import numpy as np
import pytest

from cardid.detect.plausibility import CARD_RATIO, plausibility


def rect(x, y, w, h):
    return [[x, y], [x + w, y], [x + w, y + h], [x, y + h]]


def test_an_upright_card_in_the_photo_is_fully_plausible():
    p = plausibility(rect(100, 100, 630, 880), 1000, 1200)
    assert p.convex and p.aspect == pytest.approx(880 / 630) and p.angle == pytest.approx(0.0, abs=1e-6)
    assert p.sides == 1.0 and p.diagonals == 1.0 and p.inside == 1.0
    # only the aspect's factor is below 1: log(1.3968 / 1.3968…) ≈ 0.0002
    assert p.score == pytest.approx(math.exp(-((math.log((880 / 630) / CARD_RATIO) / 0.16) ** 2)))
    assert p.score > 0.999
    # lying sideways, given in another corner order: the same card
    q = plausibility([[900, 100], [900, 730], [20, 730], [20, 100]], 1000, 1200)
    assert q.score == pytest.approx(p.score)


def test_a_square_a_card_half_out_of_the_photo_and_a_bow_tie_are_not():
    square = plausibility(rect(0, 0, 500, 500), 1000, 1000)
    assert square.aspect == 1.0 and square.score == pytest.approx(
        math.exp(-((math.log(CARD_RATIO) / 0.16) ** 2))
    )
    assert square.score < 0.02
    half = plausibility(rect(-315, 0, 630, 880), 1000, 1000)  # the left half lies outside
    assert half.inside == pytest.approx(0.5) and half.score == pytest.approx(0.5, abs=0.01)
    bigger = plausibility(rect(-200, -200, 1400, 1960), 1000, 1000)  # a box larger than the photo
    assert bigger.inside == pytest.approx(1e6 / (1400 * 1960)) and bigger.score < 0.4
    # corners crossing (a bow tie after ordering cannot happen, so a concave quad): not convex
    dart = plausibility([[0, 0], [630, 0], [300, 300], [0, 880]], 1000, 1000)
    assert not dart.convex and dart.score == 0.0
    assert plausibility([[5, 5]] * 4, 100, 100).score == 0.0  # degenerate


def test_a_card_seen_at_an_angle_stays_plausible_while_a_thin_sliver_does_not():
    # a trapezoid: the far edge 80 % of the near one (a card tilted away from the camera)
    tilted = plausibility([[163, 100], [667, 100], [730, 880], [100, 880]], 1000, 1000)
    assert tilted.sides == pytest.approx(504 / 630) and 0.3 < tilted.score < 0.9
    sliver = plausibility(rect(100, 100, 100, 800), 1000, 1000)
    assert sliver.score < 1e-6
    assert set(tilted.to_json()) == {"score", "aspect", "convex", "angle", "sides", "diagonals", "inside"}
    assert np.isfinite(list(v for v in tilted.to_json().values() if not isinstance(v, bool))).all()
