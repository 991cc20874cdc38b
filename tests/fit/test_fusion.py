"""The fitted scores: fusion weights that prefer verified evidence, a calibration that reaches its
target precision and needs both known and unknown trials."""

import pytest

from cardid.decision.decide import Calibration, Candidate, decide
from cardid.errors import CardIDError
from cardid.fit.fusion import calibrate, check_target_precision, fit_fusion


def cand(row, cos, inliers=None, hash_sim=0.5):
    return Candidate(row, f"c{row}", cos, hash_sim, inliers)


def test_fusion_fit_prefers_the_verified_card():
    # the true card (row 0) has many inliers but a worse cosine than a look-alike
    trials = [([cand(0, 0.6, 120 + i), cand(1, 0.8, 10), cand(2, 0.5, 5)], 0) for i in range(20)]
    trials += [([cand(0, 0.9, 200), cand(1, 0.4, 8)], 0)]
    fusion = fit_fusion(trials)
    cal = Calibration("fused", fusion=fusion)
    assert decide([cand(0, 0.55, 100), cand(1, 0.85, 12)], cal).card_id == "c0"
    with pytest.raises(CardIDError, match="cannot fit"):
        fit_fusion([([cand(1, 0.8, 10)], 0)])


def test_calibrate_reaches_target_and_needs_both_kinds():
    known = [([cand(0, 0.9 - i * 0.01), cand(1, 0.5)], 0) for i in range(20)]
    unknown = [[cand(1, 0.55 + i * 0.005), cand(2, 0.5)] for i in range(20)]
    cal = calibrate(known, unknown, 0.95)  # the lowest threshold that keeps precision ≥ 0.95
    assert cal.threshold == pytest.approx(0.645) and cal.stats["precision"] >= 0.95
    assert cal.stats["recall"] == 1 and cal.stats["unknown_rejected"] == 0.95
    strict = calibrate(known, unknown, 0.99)
    assert 0.645 < strict.threshold <= 0.71 and strict.stats["unknown_rejected"] == 1
    with pytest.raises(CardIDError, match="unknown-card trials"):
        calibrate(known, [], 0.95)
    with pytest.raises(CardIDError, match="labelled queries"):
        calibrate([], unknown, 0.95)


@pytest.mark.parametrize("p", [0.0, 1.0, 1.5, -0.2])
def test_a_target_precision_outside_zero_to_one_is_refused_naming_it(p):
    with pytest.raises(CardIDError, match=f"got {p}"):
        check_target_precision(p)
