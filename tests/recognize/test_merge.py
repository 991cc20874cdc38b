"""One physical card, one record: nested, overlapping and repeated boxes of a card merged; two copies
side by side and the pockets of a binder page kept apart; a page's own outline dropped."""

import pytest

from cardid.recognize.merge import containers, near_duplicates, one_per_card, overlap


def rect(x, y, w=63, h=88):
    return [[x, y], [x + w, y], [x + w, y + h], [x, y + h]]


def test_overlap_of_nested_overlapping_and_apart_quads():
    card, art = rect(0, 0, 630, 880), rect(50, 100, 530, 390)
    iou, share = overlap(card, art)
    assert share == pytest.approx(1.0) and iou == pytest.approx(530 * 390 / (630 * 880))
    assert overlap(rect(0, 0, 100, 100), rect(50, 0, 100, 100)) == pytest.approx((1 / 3, 0.5))
    assert overlap(rect(0, 0), rect(200, 0)) == (0.0, 0.0)


def test_a_card_its_art_box_and_its_sleeve_are_one_record_keeping_the_named_one():
    sleeve, card, art = rect(-20, -20, 670, 920), rect(0, 0, 630, 880), rect(50, 100, 530, 390)
    kept = one_per_card(
        [sleeve, card, art],
        ["unknown", "match", "match"],
        [0.1, 2.0, 1.5],
        [None, "sv3pt5-170", "sv3pt5-170"],
    )
    assert kept == [(1, 3)]  # the card, standing for three boxes
    # an ambiguous set beats an unknown; of two matches, the higher fused score
    assert one_per_card([card, art], ["unknown", "ambiguous"], [3.0, 0.5], [None, None]) == [(1, 2)]
    assert one_per_card([card, art], ["match", "match"], [1.0, 1.2], ["a", "b"]) == [(1, 2)]


def test_two_copies_side_by_side_stay_two_and_one_card_found_twice_is_one():
    left, right = rect(0, 0, 630, 880), rect(700, 0, 630, 880)
    assert one_per_card([left, right], ["match", "match"], [2.0, 1.9], ["sv3pt5-170"] * 2) == [(0, 1), (1, 1)]
    # two boxes a little apart that both name one card, overlapping by a quarter of the smaller:
    # one card found twice; two different cards overlapping so are two
    a, b = rect(0, 0, 630, 880), rect(470, 0, 630, 880)
    assert overlap(a, b)[1] == pytest.approx(160 / 630)
    assert one_per_card([a, b], ["match", "match"], [2.0, 1.9], ["x", "x"]) == [(0, 2)]
    assert one_per_card([a, b], ["match", "match"], [2.0, 1.9], ["x", "y"]) == [(0, 1), (1, 1)]


def test_a_binder_page_outline_is_a_container_and_near_copies_keep_the_most_plausible():
    pockets = [rect(20 + 70 * c, 20 + 95 * r) for r in range(3) for c in range(3)]
    page = rect(0, 0, 230, 310)
    quads = [page, *pockets]
    assert containers(quads) == {0}
    # a card inside its sleeve holds one card: not a container
    assert containers([rect(-5, -5, 73, 98), rect(0, 0)]) == set()
    # nine pockets, none nested: nine records
    n = len(pockets)
    assert one_per_card(pockets, ["match"] * n, [1.0] * n, [f"c{i}" for i in range(n)]) == [
        (i, 1) for i in range(n)
    ]
    twin = [[x + 1, y] for x, y in pockets[0]]
    assert near_duplicates([pockets[0], twin, pockets[1]], [0.5, 0.9, 0.8]) == {0}


def test_a_card_with_its_parts_found_inside_is_no_container_but_a_page_of_named_cards_is():
    card = rect(0, 0, 630, 880)
    parts = [rect(40, 60, 250, 180), rect(340, 60, 250, 180), rect(40, 600, 250, 180)]  # art, text…
    quads = [card, *parts]
    assert containers(quads) == {0}  # by geometry alone it would be
    assert containers(quads, [True, False, False, False]) == set()  # it names itself, they nothing
    assert containers(quads, [False, False, False, False]) == {0}  # a page of cards nobody knows
    assert containers(quads, [True, True, True, False]) == {0}  # it holds two named cards


def test_a_box_naming_nothing_that_covers_part_of_a_named_card_is_part_of_it():
    card, half = rect(0, 0, 630, 880), rect(400, 300, 500, 700)  # a third of it on the card
    share = overlap(card, half)[1]
    assert 0.3 <= share < 0.6
    assert one_per_card([card, half], ["match", "unknown"], [2.0, 0.1], ["a", None]) == [(0, 2)]
    # two unknown cards overlapping so stay two: nothing says they are one
    assert one_per_card([card, half], ["unknown", "unknown"], [0.2, 0.1], [None, None]) == [(0, 1), (1, 1)]
