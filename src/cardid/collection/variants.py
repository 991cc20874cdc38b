"""The variants a collector records of a printing, in one vocabulary, and each app's words for them.

A row's ``printing`` is an **edition stamp** and a **finish**, written as one name:

- finish: ``Normal``, ``Holofoil``, ``Reverse Holofoil``, the pattern reverse holos (``Poké Ball
  Reverse Holofoil``, ``Master Ball Reverse Holofoil``), ``Cosmos Holofoil``, ``Cracked Ice Holofoil``;
- edition (Wizards of the Coast sets): ``1st Edition``, ``Shadowless`` (Base Set), ``Unlimited``;
  none for later sets.

The name is the edition then the finish (``1st Edition Holofoil``), the finish alone without an
edition, the edition alone for a normal finish (``Shadowless``): so TCGplayer's seven words are
seven of these names, and files written before the vocabulary grew read as they were.

:func:`variants_for` gives the variants that can exist for a card, from its set's era and its
rarity (every one where the catalog does not say); :data:`APP_WORDS` maps each to the words of
the TCGplayer app, Collectr, Dragon Shield and TCG Collector, and :func:`from_app` reads them back.
"""

from __future__ import annotations

import functools
import unicodedata
from typing import Any

FINISHES = (
    "Normal",
    "Holofoil",
    "Reverse Holofoil",
    "Poké Ball Reverse Holofoil",
    "Master Ball Reverse Holofoil",
    "Cosmos Holofoil",
    "Cracked Ice Holofoil",
)
EDITIONS = ("", "1st Edition", "Shadowless", "Unlimited")
#: finishes an edition stamp came with (Wizards of the Coast printed no pattern or cosmos holos)
_STAMPED = ("Normal", "Holofoil")


def join(edition: str, finish: str) -> str:
    if not edition:
        return finish
    return edition if finish == "Normal" else f"{edition} {finish}"


def split(printing: str) -> tuple[str, str]:
    """``"1st Edition Holofoil"`` → ``("1st Edition", "Holofoil")``; ``"Shadowless"`` →
    ``("Shadowless", "Normal")``."""
    for e in EDITIONS[1:]:
        if printing == e:
            return e, "Normal"
        if printing.startswith(e + " "):
            return e, printing[len(e) + 1 :]
    return "", printing


#: every variant a row may record, in the order a page cycles them
PRINTINGS = tuple(join(e, f) for e in EDITIONS for f in FINISHES if not e or f in _STAMPED)

#: sets printed with a 1st Edition stamp (and Unlimited after it); Base Set also Shadowless
FIRST_EDITION_SETS = frozenset(
    {"base1", "base2", "base3", "base5", "gym1", "gym2", "neo1", "neo2", "neo3", "neo4"}
)
#: sets whose reverse holos come in Poké Ball and Master Ball patterns
PATTERN_SETS = frozenset({"sv3pt5", "sv8pt5", "sv9", "sv10", "rsv10pt5", "zsv10pt5"})


def _year(record: Any) -> int | None:
    date = str(getattr(record, "release_date", "") or "")
    return int(date[:4]) if date[:4].isdigit() else None


def variants_for(record: Any) -> list[str]:
    """The printings that can exist for a card (a catalog record): its set's editions times the
    finishes of its rarity and era; every finish where the catalog says no rarity or date (and
    for promos, which come in any). Without a record, every variant."""
    if record is None:
        return list(PRINTINGS)
    set_id = str(getattr(record, "set_id", "") or "").lower()
    rarity = " ".join(str(getattr(record, "rarity", "") or "").lower().split())
    year = _year(record)
    if set_id == "base1":
        editions = ["1st Edition", "Shadowless", "Unlimited"]
    elif set_id in FIRST_EDITION_SETS:
        editions = ["1st Edition", "Unlimited"]
    else:
        editions = [""]
    set_name = str(getattr(record, "set_name", "") or "").lower()
    if not rarity or year is None or "promo" in rarity or "promo" in set_name:
        return [p for p in PRINTINGS if split(p)[0] in editions]
    if rarity in ("common", "uncommon", "rare"):
        finishes, more = ["Normal"], True
    elif rarity == "rare holo":
        finishes, more = ["Holofoil"], True
    else:  # every other rarity (ex, V, ultra, secret, illustration rares…) is printed holo only
        finishes, more = ["Holofoil"], False
    if more and year >= 2002 and not editions[0]:  # reverse holos began with Legendary Collection
        finishes.append("Reverse Holofoil")
        if set_id in PATTERN_SETS:
            finishes += ["Poké Ball Reverse Holofoil", "Master Ball Reverse Holofoil"]
        if year >= 2011:  # cosmos and cracked ice holos: decks, tins and blisters
            finishes += ["Cosmos Holofoil", "Cracked Ice Holofoil"]
    return [join(e, f) for e in editions for f in FINISHES if f in finishes and join(e, f) in PRINTINGS]


def _fold(s: str) -> str:
    s = unicodedata.normalize("NFKD", s).encode("ascii", "ignore").decode()
    return " ".join(s.lower().replace("-", " ").split())


#: how each app writes a finish and an edition (what its export says; what its import reads)
_FINISH_WORDS = {
    "tcgplayer": {f: f for f in FINISHES} | {"Poké Ball Reverse Holofoil": "Poke Ball Reverse Holofoil"},
    "collectr": {f: f for f in FINISHES} | {"Poké Ball Reverse Holofoil": "Poke Ball Reverse Holofoil"},
    "dragonshield": {
        "Normal": "Normal",
        "Holofoil": "Foil",
        "Reverse Holofoil": "Reverse Holo",
        "Poké Ball Reverse Holofoil": "Reverse Holo",
        "Master Ball Reverse Holofoil": "Reverse Holo",
        "Cosmos Holofoil": "Foil",
        "Cracked Ice Holofoil": "Foil",
    },
    "tcgcollector": {
        "Normal": "Normal",
        "Holofoil": "Holo",
        "Reverse Holofoil": "Reverse Holo",
        "Poké Ball Reverse Holofoil": "Poké Ball Reverse Holo",
        "Master Ball Reverse Holofoil": "Master Ball Reverse Holo",
        "Cosmos Holofoil": "Cosmos Holo",
        "Cracked Ice Holofoil": "Cracked Ice Holo",
    },
}


def to_app(fmt: str, printing: str) -> str:
    """The app's word for a row's printing (Dragon Shield keeps the finish, not the edition)."""
    edition, finish = split(printing)
    word = _FINISH_WORDS[fmt][finish]
    return word if fmt == "dragonshield" else join(edition, word)


@functools.cache
def _words(fmt: str) -> tuple[dict[str, str], dict[str, str]]:
    """Folded words → our printing names, and → our finishes as ``fmt`` (then any app) says them:
    built once per format, not once per imported row."""
    own = {_fold(p): p for p in PRINTINGS}
    words: dict[str, str] = {"foil": "Holofoil", "holo": "Holofoil", "non foil": "Normal"}
    for table in (_FINISH_WORDS.get(fmt, {}), *_FINISH_WORDS.values()):
        for f, v in table.items():  # the first finish an app's word names (Dragon Shield's Foil: Holofoil)
            words.setdefault(_fold(v), f)
    return own, words


def from_app(fmt: str, word: str) -> str | None:
    """A printing of this vocabulary from an app's word for it (case, accents and hyphens aside:
    ``Reverse Holo``, ``Poke Ball Reverse Holofoil``, ``1st Edition Holo``), or None."""
    w = _fold(word)
    if not w:
        return None
    own, words = _words(fmt)
    if w in own:  # our own names first: an import of any app may already say them
        return own[w]
    edition = ""
    for e in EDITIONS[1:]:
        if w == _fold(e) or w.startswith(_fold(e) + " "):
            edition, w = e, w[len(_fold(e)) :].strip()
            break
    if not w:
        return join(edition, "Normal")
    finish = words.get(w)
    if finish is None:
        return None
    return join(edition, finish) if join(edition, finish) in PRINTINGS else None
