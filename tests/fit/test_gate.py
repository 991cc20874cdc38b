"""The finder's gate fitted on labelled boxes: the largest threshold that keeps the share of card
boxes asked for, worked out by hand; a finder's boxes labelled against the cards' boxes."""

import numpy as np
import pytest

from cardid.detect import Detection
from cardid.errors import CardIDError
from cardid.fit.gate import BoxSample, fit_gate, label_boxes


def test_the_threshold_is_the_largest_that_keeps_enough_card_boxes():
    # 50 card boxes: one at 0.004, one at 0.04, the rest at 0.9; 10 other boxes at 0.01 … 0.1
    cards = [BoxSample(0.004, True, "real"), BoxSample(0.04, True, "sim")] + [
        BoxSample(0.9, True, "real")
    ] * 48
    other = [BoxSample(0.01 * (i + 1), False, "real") for i in range(10)]
    fit = fit_gate(cards + other, keep=0.98)  # 49 of 50 must stay: 0.03 keeps 49, 0.05 keeps 48
    assert fit["threshold"] == 0.03 and fit["card_boxes_kept"] == pytest.approx(0.98)
    assert fit["other_boxes_dropped"] == pytest.approx(0.2)  # 0.01 and 0.02 fall below 0.03
    assert fit["by_source"]["sim"]["card_boxes_kept"] == 1.0 and fit["by_source"]["sim"]["other_boxes"] == 0
    assert fit_gate(cards + other, keep=1.0)["threshold"] == 0.0  # keeping every card: 0.004 stays
    assert fit_gate(cards + other, keep=0.96)["threshold"] == 0.3  # two may go: up to 0.9
    with pytest.raises(CardIDError, match="cover labelled cards"):
        fit_gate(other)


def test_boxes_are_labelled_cards_when_they_cover_a_labelled_card():
    class Fixed:  # a finder giving one box on the card and one elsewhere
        def detect(self, image):
            card = np.array([[10, 10], [73, 10], [73, 98], [10, 98]], np.float32)
            junk = np.array([[120, 10], [190, 10], [190, 40], [120, 40]], np.float32)
            return [Detection(card, 0.9), Detection(junk, 0.5)]

    image = np.zeros((120, 200, 3), np.uint8)
    s = label_boxes(Fixed(), [(image, [(10, 10, 73, 98)])], "test", refine=False)
    assert [x.is_card for x in s] == [True, False] and s[0].plausibility > 0.9 > s[1].plausibility
