"""The matcher's shortlist, its verification rounds and the order of its steps, on a hand-made DB
(tests/db/handmade.py): every expected value is worked out by hand in the comments."""

import math
from dataclasses import FrozenInstanceError

import numpy as np
import pytest
from tests.db.handmade import HASHES, HandDB, matcher, query

from cardid.decision import refine
from cardid.decision.decide import AMBIGUOUS, INLIER_SCALE, MATCH, UNKNOWN, inlier_lead
from cardid.decision.match import Matcher

#: cosine of each row with the query (the query is axis 0; row i also has its own axis i+1)
COS = [0.9, 0.8, 0.7, 0.3, 0.2, 0.1, 0.05, 0.0]


def _db(hashes=None) -> HandDB:
    n = len(COS)
    e = np.zeros((n, n + 1))
    for i, c in enumerate(COS):
        e[i, 0], e[i, i + 1] = c, math.sqrt(1 - c * c)
    cards = [{"id": f"c{i}", "name": f"card {i}"} for i in range(n)]
    return HandDB(cards, e, hashes)


def _q(db, inliers, hash_sims=None):
    x = np.zeros(len(COS) + 1)
    x[0] = 1
    return query(db, x, inliers, hash_sims)


#: pHash similarity: rows 0 (already an embedding pick), 5 and 6 look most alike
HASH_SIMS = [0.99, 0, 0, 0, 0, 0.95, 0.9, 0]


def test_the_shortlist_interleaves_embedding_and_phash_picks_best_first():
    db = _db()
    m = matcher(db, shortlist=3, hash_shortlist=2, early_stop=False)
    cands = m.candidates(_q(db, {}, HASH_SIMS))
    # embedding top 3: rows 0 1 2; pHash extras (not already picked): 5 then 6 → 0 5 1 6 2
    assert [c.row for c in cands] == [0, 5, 1, 6, 2]
    assert [round(c.cos, 6) for c in cands] == [0.9, 0.1, 0.8, 0.05, 0.7]
    assert [c.hash_sim for c in cands] == pytest.approx([0.99, 0.95, 0, 0.9, 0])
    # rows left out (an unknown-card trial) are as if not in the DB: the embedding's top 3 + 2
    # are 1 2 3 4, its picks 1 2 3; the pHash's 6 and 4, but 4 is in the embedding's top 5 and
    # so counts as an embedding pick → 1 6 2 3 4
    assert [c.row for c in m.candidates(_q(db, {}, HASH_SIMS), exclude={0, 5})] == [1, 6, 2, 3, 4]


def test_early_stop_verifies_a_clear_winner_and_its_look_alikes_only():
    hashes = HASHES[: len(COS)]
    hashes[2] = hashes[0]  # row 2's scan is row 0's picture
    db = _db(hashes)
    m = matcher(db, shortlist=3, hash_shortlist=2, first_round=2, round_size=2)
    cands = m.candidates(_q(db, {0: 100, 5: 10, 2: 30, 1: 90}, HASH_SIMS))
    # round 1 = rows 0, 5: 100 ≥ 60 inliers and (√100 − √10)/10 = 0.68 ≥ 0.3 → stop; row 2 looks
    # like row 0 (same pHash) → verified too; rows 1 and 6 never (row 1's 90 inliers unseen)
    verified = {c.row: c.inliers for c in cands if c.verified}
    assert verified == {0: 100, 5: 10, 2: 30}
    assert all(c.inliers == 0 for c in cands if not c.verified)
    # no early stop: everything shortlisted is verified
    full = matcher(db, shortlist=3, hash_shortlist=2, early_stop=False)
    assert all(c.verified for c in full.candidates(_q(db, {0: 100, 1: 90}, HASH_SIMS)))


def test_the_early_stop_lead_is_on_the_one_inlier_scale():
    db = _db()
    m = matcher(db, shortlist=3, hash_shortlist=2, first_round=2, round_size=2, stop_inliers=40)
    # √49 − √16 = 3 → a lead of exactly 0.3: stop after round 1 (rows 0 and 5)
    assert inlier_lead(49, 16) == 3 / INLIER_SCALE == 0.3
    stopped = m.candidates(_q(db, {0: 49, 5: 16}, HASH_SIMS))
    assert {c.row for c in stopped if c.verified} == {0, 5}
    # √49 − √17 = 2.877 → 0.288 < 0.3: round 2 (rows 1 and 6) runs; row 1's 100 then leads
    # row 0's 49 by (10 − 7)/10 = 0.3: stop before row 2
    more = m.candidates(_q(db, {0: 49, 5: 17, 1: 100}, HASH_SIMS))
    assert {c.row for c in more if c.verified} == {0, 5, 1, 6}
    # the lead never reaches 0.3: every round runs
    every = m.candidates(_q(db, {0: 49, 5: 17}, HASH_SIMS))
    assert {c.row for c in every if c.verified} == {0, 5, 1, 6, 2}


def test_decide_scores_on_the_fused_weights_then_runs_its_steps_in_order():
    db = _db()
    m = matcher(db, shortlist=3, hash_shortlist=0, early_stop=False, printing="rules")
    # fused score = 4 · √inliers / 10: 100 → 4.0, 30 → 2.19; margin 0.1; threshold 0.5
    d = m.decide(_q(db, {0: 100, 2: 30}))
    assert (d.kind, d.card_id, d.score) == (MATCH, "c0", 4.0)
    assert [c.row for c in d.candidates] == [0, 2, 1] and d.candidates[1].score == pytest.approx(
        4 * 30**0.5 / 10
    )
    tie = m.decide(_q(db, {0: 100, 2: 98}))  # 4.0 and 3.96: within the margin
    assert tie.kind == AMBIGUOUS and [c.row for c in tie.cards] == [0, 2]
    none = m.decide(_q(db, {0: 1}))  # 0.4 < 0.5
    assert none.kind == UNKNOWN and none.cards == [] and none.score == pytest.approx(0.4)
    assert m.steps() == (refine.printings, refine.resolve)
    assert matcher(db, reader=lambda *a, **k: None, printing="rules").steps() == (
        refine.printings,
        refine.by_number,
        refine.resolve,
    )
    assert matcher(db, printing="model").steps() == (refine.printing,)


def test_auto_weighs_the_printing_by_the_model_only_where_it_was_fitted_on_real_photos():
    """A printing model fitted on simulated views alone is overconfident on real photos: "auto"
    (the default) then decides by the rules; one fitted on real photos, or given, decides."""
    from dataclasses import replace

    from tests.db.handmade import FUSED

    from cardid.decision.match import MatchConfig, Matcher
    from cardid.decision.printing import PrintingModel

    db = _db()
    rules = (refine.printings, refine.resolve)

    def steps(fitted: dict | None, **kw):
        printing = PrintingModel(fitted=fitted).to_dict() if fitted is not None else None
        cal = replace(FUSED, printing=printing)
        return Matcher(db, None, MatchConfig(read_numbers=False), calibration=cal, **kw).steps()

    assert steps(None) == rules  # no model stored: the hand-set defaults are not trusted either
    assert steps({"sets": 205}) == rules  # fitted on simulated views only
    assert steps({"simulated_sets": 205, "real_sets": 842}) == (refine.printing,)
    assert steps(None, printing_model=PrintingModel()) == (refine.printing,)  # given: used


def test_candidates_and_decisions_cannot_be_changed_in_place():
    db = _db()
    m = matcher(db, shortlist=3, hash_shortlist=0, early_stop=False)
    q = _q(db, {0: 100})
    cands = m.candidates(q)
    d = m.decide(q)
    with pytest.raises(FrozenInstanceError):
        cands[0].score = 1.0
    with pytest.raises(FrozenInstanceError):
        d.printed = {}
    assert all(c.score == 0.0 for c in cands)  # scoring returned new candidates


def test_a_matcher_is_frozen_and_with_gives_another():
    """Nothing is assigned to a matcher after it is built (what it derived would go stale); a
    fold's adapter or another calibration is a new matcher, the first unchanged."""
    db = _db()
    m = matcher(db)
    with pytest.raises(AttributeError, match=r"frozen: matcher.with_\(adapter=…\)"):
        m.adapter = "x"
    with pytest.raises(AttributeError, match="frozen"):
        m.calibration = None
    dim = db.embeddings.shape[1]
    from cardid.embed.adapter import QueryAdapter

    a = QueryAdapter(np.eye(dim) * 2.0, 1.0, 0)
    m2 = m.with_(adapter=a)
    assert m2.adapter is a and m.adapter is None and m2.art is m.art  # art pairs compared once
    assert m2.calibration == m.calibration and m2.config == m.config and m2.printing == m.printing
    e = np.zeros(dim, np.float32)
    e[0] = 1.0
    assert np.allclose(m2.query(np.zeros((448, 320, 3), np.uint8), e).raw_embedding, e)
    # "the DB's" stays the DB's, and an uncalibrated DB stays uncalibrated through with_
    raw = Matcher(db, embedder=None, config=m.config)
    assert raw.calibrated is False and raw.with_(adapter=None).calibrated is False
    with pytest.raises(TypeError, match="takes config"):
        m.with_(db=None)
