import numpy as np
import pytest

from cardid.errors import CardIDError
from cardid.recognize.binder import parse_layout, pockets


def page(rows, cols, keep=None, w=63, h=88, gap=6, jitter=0.0, seed=0):
    rng = np.random.default_rng(seed)
    quads = []
    for r in range(rows):
        for c in range(cols):
            if keep is not None and r * cols + c + 1 not in keep:
                continue
            x, y = 20 + c * (w + gap) + rng.normal(0, jitter), 30 + r * (h + gap) + rng.normal(0, jitter)
            quads.append([[x, y], [x + w, y], [x + w, y + h], [x, y + h]])
    return quads


def test_a_full_page_is_named_in_reading_order():
    quads = page(3, 3, jitter=3.0)
    order = np.random.default_rng(1).permutation(9)  # the finder returns cards in any order
    assert pockets([quads[i] for i in order]) == [int(i) + 1 for i in order]
    assert pockets(page(3, 4), rows=3, cols=4) == list(range(1, 13))
    assert pockets(page(2, 2), rows=2, cols=2) == [1, 2, 3, 4]


def test_empty_pockets_keep_the_others_in_place():
    keep = {1, 2, 5, 7, 9}
    assert pockets(page(3, 3, keep=keep)) == sorted(keep)


def test_a_card_outside_the_grid_or_twice_in_a_pocket_is_not_placed():
    quads = [*page(3, 3), page(1, 1)[0]]  # a tenth card on top of pocket 1
    assert pockets(quads)[-1] is None
    assert pockets(page(3, 4), rows=3, cols=3)[3] is None  # a 4th column on a 3x3 page


def test_layouts():
    assert parse_layout("3x3") == (3, 3) and parse_layout("3×4") == (3, 4)
    with pytest.raises(CardIDError, match="ROWSxCOLS"):
        parse_layout("nine")
    assert pockets([]) == []
