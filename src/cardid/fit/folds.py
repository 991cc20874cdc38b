"""Card-disjoint folds: whatever is fitted on real photos is fitted on some cards, measured on others.

With one real photo set (photos-dev: 51 cards), a threshold, a printing model or an adapter fitted on
its photos and measured on the same photos reports what it memorised. :func:`card_folds` puts every
card — with all its photos, and with every other printing of the same card name when ``group`` says
so — in exactly one of ``k`` folds; fold ``i`` is measured by what was fitted on the other folds.
:func:`require_disjoint` refuses a fit whose cards meet the cards it is measured on.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from cardid.data.photoset import PhotoSet
from cardid.errors import CardIDError

#: Fewer cards than this in a fold measure little and fit nothing: refused.
MIN_CARDS_PER_FOLD = 2


@dataclass(frozen=True)
class CardFolds:
    k: int
    seed: int
    fold_of: dict[str, int]  # card id → fold

    def held_out(self, i: int) -> list[str]:
        """The cards of fold ``i`` (measured with what was fitted on the others)."""
        return sorted(c for c, f in self.fold_of.items() if f == i)

    def fitted_on(self, i: int) -> list[str]:
        """The cards fold ``i``'s model may be fitted on: every other fold's."""
        return sorted(c for c, f in self.fold_of.items() if f != i)

    def split(self, photos: PhotoSet, i: int) -> tuple[PhotoSet, PhotoSet]:
        """``(fit, measure)`` photos for fold ``i``; they share no card, by construction and checked."""
        fit, held = photos.of_cards(self.fitted_on(i)), photos.of_cards(self.held_out(i))
        require_disjoint(fit.card_ids, held.card_ids, f"fold {i}")
        return fit, held

    def to_dict(self, photos: PhotoSet | None = None) -> dict:
        out: dict = {"k": self.k, "seed": self.seed, "cards": [self.held_out(i) for i in range(self.k)]}
        if photos is not None:
            counts = Counter(self.fold_of[c] for c in photos.card_ids)
            out["photos"] = [counts.get(i, 0) for i in range(self.k)]
        return out


def card_folds(
    photos: PhotoSet, k: int = 5, seed: int = 0, group: Callable[[str], str] | None = None
) -> CardFolds:
    """Split the cards of ``photos`` into ``k`` folds, balanced by photo count, deterministic for a
    ``seed``. ``group`` maps a card to what must stay together (e.g. its name, so no printing of a
    card is fitted on while another is measured); by default each card is its own group."""
    if k < 2:
        raise CardIDError(f"folds: need at least 2 (one to fit on, one to measure), got {k}")
    group = group or (lambda c: c)
    per_group: dict[str, list[str]] = {}
    for c in photos.cards():
        per_group.setdefault(group(c), []).append(c)
    if len(per_group) < k * MIN_CARDS_PER_FOLD:
        raise CardIDError(
            f"{photos.source}: {len(per_group)} card group(s) cannot fill {k} folds of at least "
            f"{MIN_CARDS_PER_FOLD}: use fewer folds (--folds) or more cards"
        )
    count = Counter(photos.card_ids)
    weight = {g: sum(count[c] for c in cards) for g, cards in per_group.items()}
    order = sorted(per_group)
    random.Random(seed).shuffle(order)  # the seed decides ties, then the heaviest groups go first
    order.sort(key=lambda g: -weight[g])
    load = [0] * k
    n_groups = [0] * k
    fold_of: dict[str, int] = {}
    for g in order:
        i = min(range(k), key=lambda j: (load[j], n_groups[j], j))
        load[i] += weight[g]
        n_groups[i] += 1
        for c in per_group[g]:
            fold_of[c] = i
    return CardFolds(k, seed, fold_of)


def require_disjoint(
    fit_cards: Iterable[str], measured_cards: Iterable[str], what: str = "evaluation"
) -> None:
    """Refuse to measure on cards something was fitted on: one line naming a few of them."""
    shared = sorted(set(fit_cards) & set(measured_cards))
    if shared:
        raise CardIDError(
            f"{what}: refusing to fit and measure on the same cards ({len(shared)}, e.g. "
            f"{', '.join(shared[:5])}); fit on other cards (card-disjoint folds)"
        )
