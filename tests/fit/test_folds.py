"""Card-disjoint folds: no card in two folds, printings of one card together, refusals."""

from dataclasses import replace

import pytest

from cardid.data.photoset import LabelledPhoto, PhotoSet
from cardid.errors import CardIDError
from cardid.fit.folds import card_folds, require_disjoint
from cardid.fit.records import PhotoRecord
from cardid.fit.refit import printing_split


def _set(counts: dict[str, int]) -> PhotoSet:
    return PhotoSet([LabelledPhoto(f"{c}-{i}.jpg", c) for c, n in counts.items() for i in range(n)], "test")


def test_every_card_is_in_exactly_one_fold_and_folds_are_balanced():
    counts = {f"base1-{i}": 10 + (i * 7) % 40 for i in range(1, 52)}  # 51 cards, uneven photo counts
    photos = _set(counts)
    folds = card_folds(photos, k=5, seed=0)
    held = [folds.held_out(i) for i in range(5)]
    assert sorted(c for h in held for c in h) == sorted(counts)  # each card once
    for i in range(5):
        fit, measure = folds.split(photos, i)
        assert not set(fit.card_ids) & set(measure.card_ids) and len(fit) + len(measure) == len(photos)
    sizes = folds.to_dict(photos)["photos"]
    assert max(sizes) - min(sizes) <= max(counts.values())  # greedy by photos: within one card's worth
    assert card_folds(photos, 5, seed=0) == folds and card_folds(photos, 5, seed=1) != folds


def test_printings_of_one_card_stay_in_one_fold():
    counts = {"base1-4": 5, "xy12-11": 5, "base1-58": 3, "xy12-35": 3} | {f"sv2-{i}": 2 for i in range(8)}
    name = {"base1-4": "charizard", "xy12-11": "charizard", "base1-58": "pikachu", "xy12-35": "pikachu"}
    folds = card_folds(_set(counts), k=3, group=lambda c: name.get(c, c))
    assert folds.fold_of["base1-4"] == folds.fold_of["xy12-11"]
    assert folds.fold_of["base1-58"] == folds.fold_of["xy12-35"]


def test_too_few_cards_and_overlapping_fits_are_refused():
    with pytest.raises(CardIDError, match="3 card group"):
        card_folds(_set({"a-1": 2, "a-2": 2, "a-3": 2}), k=2)
    with pytest.raises(CardIDError, match="at least 2"):
        card_folds(_set({f"a-{i}": 1 for i in range(10)}), k=1)
    with pytest.raises(CardIDError, match=r"refusing to fit and measure on the same cards \(1, e.g. a-2\)"):
        require_disjoint(["a-1", "a-2"], ["a-2", "a-3"], "calibration")
    require_disjoint(["a-1"], ["a-2"])  # disjoint: fine


def test_the_printing_split_counts_the_card_and_its_printing_apart():
    def photo(truth, outcome, named=None, width=None):
        corners = [[0, 0], [width, 0], [width, 1.4 * width], [0, 1.4 * width]] if width else None
        cards = [{"decision": "unknown", "corners": corners}] if width else []
        return PhotoRecord.from_json(
            {"file": f"{truth}.jpg", "card_id": truth, "outcome": outcome, "named": named, "cards": cards}
        )

    per = [
        photo("base1-4", "correct", "base1-4", 300),
        photo("base1-4", "wrong", "xy12-11", 150),  # another printing of Charizard
        photo("base1-4", "wrong", "base1-2", 200),  # another card
        photo("base1-4", "ambiguous", None, 200),
        photo("base1-4", "unknown"),
    ]
    name = {"base1-4": "charizard", "xy12-11": "charizard", "base1-2": "blastoise"}.get
    s = printing_split(per, name)
    assert s["photos"] == 5 and s["exact_printing"] == 0.2 and s["wrong_printing"] == 0.2
    assert (
        s["wrong_card"] == 0.2 and s["ambiguous_with_truth"] == 0.2 and s["card_named"] == pytest.approx(0.6)
    )
    assert [s["by_width"][b]["photos"] for b in ("<180", "180-260", ">260", "no card found")] == [1, 2, 1, 1]
    assert s["by_width"]["<180"]["wrong_printing"] == 1.0


def test_the_strip_margin_is_fitted_on_other_cards_only():
    from cardid.fit.folds import CardFolds
    from cardid.fit.refit import fit_strip_margin, redecide_strip

    def photo(truth, lead, named):
        other = "x-" + truth
        card = {"card_id": named, "strip": lead}
        rival = {"card_id": other if named == truth else truth, "strip": -lead}
        rec = {
            "decision": "match",
            "card": card,
            "ambiguous_between": [],
            "resolved_by": "strip",
            "top": [card, rival],
            "score": 1.0,
        }
        outcome = "correct" if named == truth else "wrong"
        return PhotoRecord.from_json({"file": "p.jpg", "card_id": truth, "outcome": outcome, "cards": [rec]})

    cards = [f"c-{i}" for i in range(10)]
    per = [photo(c, 0.6, c) for c in cards for _ in range(9)] + [photo(c, 0.3, "x-" + c) for c in cards]
    assert redecide_strip(per[0], 0.5) == "correct" and redecide_strip(per[0], 0.7) == "ambiguous"
    assert redecide_strip(per[-1], 0.25) == "wrong" and redecide_strip(per[-1], 0.35) == "ambiguous"
    folds = CardFolds(2, 0, {c: i % 2 for i, c in enumerate(cards)})
    fitted = fit_strip_margin(per, folds, max_wrong=0.01)
    # above the wrong leads, not above the right ones (of equals, the most cautious)
    assert [r["margin"] for r in fitted["per_fold"]] == [0.6, 0.6]
    assert fitted["pooled"] == {"exact": 0.9, "wrong": 0.0, "ambiguous": 0.1}
    # what only fold 0's own cards show never moves fold 0's margin
    per2 = per + [photo("c-0", 0.55, "x-c-0")] * 5
    assert fit_strip_margin(per2, folds, max_wrong=0.01)["per_fold"][0]["margin"] == 0.6


def test_the_printing_model_is_fitted_on_other_cards_only():
    """Each fold's model and p_min come from the simulated sets and the other folds' photos; what
    only a fold's own cards show never moves its model."""
    from cardid.decision.printing import Evidence, PrintingModel, PrintingSet
    from cardid.fit.folds import CardFolds
    from cardid.fit.printing import redecide_printing
    from cardid.fit.refit import fit_printing_folds

    def photo(truth, lead, width=250):
        s = PrintingSet((Evidence(truth, 0.8, 50, lead), Evidence("x-" + truth, 0.8, 50, -lead)), width)
        rec = {"decision": "match", "card": {"card_id": truth}, "ambiguous_between": [], "score": 1.0}
        rec |= {"printing": s.to_dict()}
        return PhotoRecord.from_json(
            {"file": "p.jpg", "card_id": truth, "outcome": "correct", "cards": [rec]}
        )

    cards = [f"c-{i}" for i in range(10)]
    per = [photo(c, 0.3) for c in cards for _ in range(9)] + [photo(c, -0.1) for c in cards]
    sure = PrintingModel([0, 0, 0, 10.0, 0, 0], p_min=0.9)
    assert redecide_printing(per[0], sure).outcome == "correct"  # 6 · 10 → p 0.998
    assert redecide_printing(per[-1], sure).outcome == "ambiguous"  # p 0.88 for the reprint
    wrong = redecide_printing(per[-1], sure, p_min=0.5)
    assert replace(wrong, cards=()) == replace(per[-1], outcome="wrong", named="x-c-9", cards=())
    assert wrong.cards[0].decision == "match" and wrong.cards[0].named == "x-c-9"
    simulated = [photo(c, 0.4).cards[0].printing(truth=c) for c in cards]
    folds = CardFolds(2, 0, {c: i % 2 for i, c in enumerate(cards)})
    fitted = fit_printing_folds(per, folds, simulated, name_of=lambda c: c.removeprefix("x-"), max_wrong=0.01)
    assert [m["fitted"]["real_photos"] for m in fitted["models"]] == [50, 50]
    assert all(m["weights"][3] + 0.625 * m["weights"][4] > 0 for m in fitted["models"])  # the strip learnt
    # held out: nine photos of ten named right, the tenth (the strip favours the reprint) not named
    assert fitted["mean"]["exact_printing"] == pytest.approx(0.9)
    assert fitted["mean"]["wrong_printing"] == 0.0
    # what only fold 0's own cards show never moves fold 0's model
    per2 = per + [photo("c-0", -0.5)] * 20
    again = fit_printing_folds(per2, folds, simulated, name_of=lambda c: c.removeprefix("x-"))
    assert again["models"][0]["weights"] == fitted["models"][0]["weights"]
    assert again["models"][1]["weights"] != fitted["models"][1]["weights"]
