"""Each step that decides a printing, on hand-made candidates and verifications
(tests/db/handmade.py): every branch, each expected value worked out by hand, and the decision
given never changed."""

import copy
import math

import numpy as np
import pytest
from tests.db.handmade import HandDB, matcher, query, text_reader

from cardid.decision import refine
from cardid.decision.decide import AMBIGUOUS, MATCH, Candidate, Decision
from cardid.decision.printing import PrintingModel

# three printings of Pikachu (base1 and its Evolutions reprint share their art; Jungle's differs)
# and a Raichu with one printing
CARDS = [
    {"id": "p1", "name": "Pikachu", "set_id": "base1", "number": "58", "set_total": 102, "art_id": "a"},
    {"id": "p2", "name": "Pikachu", "set_id": "xy12", "number": "35", "set_total": 108, "art_id": "a"},
    {"id": "p3", "name": "Pikachu", "set_id": "base2", "number": "60", "set_total": 64, "art_id": "b"},
    {"id": "r", "name": "Raichu", "set_id": "base1", "number": "14", "set_total": 102, "art_id": "r"},
]
EMB = np.eye(4, 5) + 0.1  # four distinct directions, no two at cosine ≥ 0.9


@pytest.fixture
def db():
    return HandDB(CARDS, EMB)


def cand(db, cid, inliers=None, score=0.0):
    """A shortlisted card: verified with ``inliers`` (None: not verified, 0 inliers)."""
    row = db.row_of[cid]
    cos = float(db.embeddings[row] @ db.embeddings[0])
    return Candidate(row, cid, cos, 0.0, inliers or 0, None, score, 0.0, inliers is not None)


def q_for(db, inliers: dict[str, int]):
    return query(db, EMB[0], {db.row_of[c]: n for c, n in inliers.items()})


def unchanged(step, m, q, d):
    """Run a step and check it left the decision it was given as it was."""
    before = copy.deepcopy(d)
    out = step(m, q, d)
    assert d == before
    return out


# --- printings (rules) -----------------------------------------------------------------------


def test_a_match_beside_a_same_art_printing_is_a_question_of_printing(db):
    m = matcher(db, printing="rules")
    cands = [cand(db, "p1", 100, 4.0), cand(db, "p2", 90), cand(db, "p3", 80), cand(db, "r", 5)]
    d = Decision(MATCH, [cands[0]], 4.0, cands)
    r = unchanged(refine.printings, m, q_for(db, {"p1": 100, "p2": 90, "p3": 80, "r": 5}), d)
    assert r.kind == AMBIGUOUS and [c.card_id for c in r.cards] == ["p1", "p2"]  # Jungle's art differs
    # not fused (no verification features): left as decided
    q = q_for(db, {"p1": 100})
    q.features = None
    assert refine.printings(m, q, d) is d


def test_a_same_art_printing_left_unverified_is_verified_now(db):
    m = matcher(db, printing="rules")
    cands = [cand(db, "p1", 100, 4.0), cand(db, "p2"), cand(db, "r", 5)]  # p2: early stop skipped it
    d = Decision(MATCH, [cands[0]], 4.0, cands)
    # 90 inliers ≥ max(15, 0.4 · 100): it joins, verified, in the set and in the shortlist
    r = unchanged(refine.printings, m, q_for(db, {"p1": 100, "p2": 90}), d)
    assert [(c.card_id, c.inliers, c.verified) for c in r.cards] == [("p1", 100, True), ("p2", 90, True)]
    assert r.candidates[1].verified and r.candidates[1].inliers == 90
    # 30 < 40: its art does not match well enough
    assert refine.printings(m, q_for(db, {"p1": 100, "p2": 30}), d) is d
    # not even shortlisted: the nearest printings outside the shortlist are verified too
    out = Decision(MATCH, [cands[0]], 4.0, [cands[0], cands[2]])
    r = refine.printings(m, q_for(db, {"p1": 100, "p2": 90}), out)
    assert [c.card_id for c in r.cards] == ["p1", "p2"] and [c.card_id for c in r.candidates] == ["p1", "r"]


# --- by_number (rules) ------------------------------------------------------------------------


def _ambiguous(db):
    cands = [cand(db, "p1", 100, 4.0), cand(db, "p2", 96, 3.9), cand(db, "r", 5)]
    return Decision(AMBIGUOUS, cands[:2], 4.0, cands)


@pytest.mark.parametrize(
    ("text", "kind", "card", "agrees"),
    [
        ("58/102", MATCH, "p1", True),  # base1's number and total: p1 alone agrees
        ("35/108", MATCH, "p2", True),
        ("7/50", AMBIGUOUS, None, False),  # legible, nobody agrees
        ("", AMBIGUOUS, None, None),  # nothing legible
    ],
)
def test_the_number_resolves_an_ambiguous_set_only_when_one_member_agrees(db, text, kind, card, agrees):
    m = matcher(db, reader=text_reader(text), printing="rules")
    d = _ambiguous(db)
    r = unchanged(refine.by_number, m, q_for(db, {"p1": 100, "p2": 96}), d)
    assert (r.kind, r.card_id, r.printed["agrees"]) == (kind, card, agrees)
    assert r.resolved_by == ("number" if kind == MATCH else None)
    assert r.printed["agreeing"] == ([card] if card else [])


def test_the_number_moves_a_match_only_to_a_printing_it_is_sure_of(db):
    q = q_for(db, {"p1": 100, "p2": 90})
    top = cand(db, "p1", 100, 4.0)
    verified = Decision(MATCH, [top], 4.0, [top, cand(db, "p2", 90), cand(db, "r", 5)])
    unverified = Decision(MATCH, [top], 4.0, [top, cand(db, "p2"), cand(db, "r", 5)])

    def by(text, d):
        return unchanged(refine.by_number, matcher(db, reader=text_reader(text), printing="rules"), q, d)

    # p2 verified against the crop: its number moves the match, even over a total read one off
    assert (by("35/109", verified).card_id, by("35/109", verified).resolved_by) == ("p2", "number")
    # p2 not verified: the number and its printed total must both agree exactly ...
    assert by("35/108", unverified).card_id == "p2"
    # ... a total one digit off does not: the match stands, flagged
    r = by("35/109", unverified)
    assert (r.kind, r.card_id, r.printed["agrees"]) == (MATCH, "p1", False)
    # a number that agrees with the match: it stands, agreeing
    assert by("58/102", verified).printed["agrees"] is True
    # a card with one printing: nothing to read
    raichu = cand(db, "r", 100, 4.0)
    d = Decision(MATCH, [raichu], 4.0, [raichu])
    assert refine.by_number(matcher(db, reader=text_reader("14/102"), printing="rules"), q, d) is d


# --- resolve (rules) --------------------------------------------------------------------------


def test_the_strips_name_a_printing_only_by_the_margin(db, monkeypatch):
    m = matcher(db, printing="rules")  # strip margin 0.25
    q = q_for(db, {"p1": 100, "p2": 96})
    d = _ambiguous(db)
    monkeypatch.setattr(refine, "strip_leads", lambda m, q, cards: {0: 0.3, 1: -0.3})
    r = unchanged(refine.resolve, m, q, d)
    assert (r.kind, r.card_id, r.resolved_by, r.cards[0].strip) == (MATCH, "p1", "strip", 0.3)
    assert [c.strip for c in r.candidates] == [0.3, -0.3, None]
    monkeypatch.setattr(refine, "strip_leads", lambda m, q, cards: {0: 0.1, 1: -0.1})
    r = unchanged(refine.resolve, m, q, d)
    assert r.kind == AMBIGUOUS and [c.strip for c in r.cards] == [0.1, -0.1]
    monkeypatch.setattr(refine, "strip_leads", lambda m, q, cards: {})  # the strips do not differ
    assert refine.resolve(m, q, d) is d


def test_a_set_with_other_art_or_an_unplaced_strip_is_never_decided_by_strips(db, monkeypatch):
    m = matcher(db, printing="rules")
    monkeypatch.setattr(refine, "strip_leads", lambda *a: pytest.fail("strips compared"))
    c1, c3 = cand(db, "p1", 100, 4.0), cand(db, "p3", 96, 3.9)
    mixed = Decision(AMBIGUOUS, [c1, c3], 4.0, [c1, c3])
    assert refine.resolve(m, q_for(db, {"p1": 100, "p3": 96}), mixed) is mixed  # Jungle's art differs
    d = _ambiguous(db)
    assert refine.resolve(m, q_for(db, {"p1": 100}), d) is d  # p2 has no homography to place its strip


def test_strip_leads_compare_only_where_the_printings_strips_differ(db):
    m = matcher(db, printing="rules")
    strips = db.features.strips
    h, w = strips.shape[1:]
    strips[0, :, : w // 3] = 200  # base1 prints something at the left of its strip ...
    strips[1, :, -w // 3 :] = 200  # ... Evolutions at the right
    q = q_for(db, {"p1": 100, "p2": 96})
    q.features.fine[-h:] = strips[0]  # the crop shows base1's strip
    leads = refine.strip_leads(m, q, _ambiguous(db).cards)
    assert leads[0] > 0.25 and leads[1] == -leads[0]
    assert refine.resolve(m, q, _ambiguous(db)).card_id == "p1"


# --- printing (the model) ---------------------------------------------------------------------


def test_the_printing_model_names_a_printing_with_its_probability(db):
    m = matcher(db).with_(printing_model=PrintingModel([0, 0, 10.0, 0, 0, 0], p_min=0.95))  # inliers only
    top = cand(db, "p1", 100, 4.0)
    d = Decision(MATCH, [top], 4.0, [top, cand(db, "p2", 64), cand(db, "r", 5)])
    q = q_for(db, {"p1": 100, "p2": 64})
    r = unchanged(refine.printing, m, q, d)
    # inlier leads: p1 (√100 − √64)/10 = 0.2, p2 −0.2 → logits 2, −2 → p1 = 1 / (1 + e⁻⁴)
    p1 = 1 / (1 + math.exp(-4))
    assert (r.kind, r.card_id, r.resolved_by) == (MATCH, "p1", "art")
    assert r.probability == pytest.approx(p1)
    assert {x["card_id"]: x["p"] for x in r.printing["members"]} == {
        "p1": round(p1, 4),
        "p2": round(1 - p1, 4),
    }
    assert r.printing["width"] == 320 and all(x["strip"] is None for x in r.printing["members"])
    # below p_min: ambiguous between the two (p2's 0.018 is under KEEP, but a set keeps two)
    m = m.with_(printing_model=PrintingModel([0, 0, 10.0, 0, 0, 0], p_min=0.99))
    r = refine.printing(m, q, d)
    assert (r.kind, [c.card_id for c in r.cards], r.resolved_by) == (AMBIGUOUS, ["p1", "p2"], None)
    # one printing in sight: left as decided
    raichu = cand(db, "r", 100, 4.0)
    one = Decision(MATCH, [raichu], 4.0, [raichu])
    assert refine.printing(m, q, one) is one


def test_the_printing_model_reads_the_number_as_evidence(db):
    m = matcher(db, reader=text_reader("35/108")).with_(
        printing_model=PrintingModel([0, 0, 10.0, 0, 0, 4.0], p_min=0.9)
    )
    top = cand(db, "p1", 100, 4.0)
    d = Decision(MATCH, [top], 4.0, [top, cand(db, "p2", 81)])
    r = unchanged(refine.printing, m, q_for(db, {"p1": 100, "p2": 81}), d)
    # inliers: p1 +0.1, p2 −0.1 (×10 → ±1); number: p2 +1, p1 −1 (×4 → ±4): p2 by 6 in logit
    assert (r.kind, r.card_id, r.resolved_by) == (MATCH, "p2", "number")
    assert r.probability == pytest.approx(1 / (1 + math.exp(-6)))
    assert r.printed["agreeing"] == ["p2"] and r.printed["agrees"] is True
