"""Exports the collection apps import (TCGplayer app, Collectr, Dragon Shield, TCG Collector) and cardid's own
CSV/JSON, which imports back (:mod:`cardid.collection.imports` reads them all). Names, set names, numbers and rarity come from the catalog.

Every text cell is neutralised against formula injection (OWASP): a cell that starts with ``=``,
``+``, ``-``, ``@``, a tab or a carriage return is prefixed with ``'``, so a spreadsheet shows it as
text instead of running it (``=HYPERLINK(…)`` in a card name runs in Excel, LibreOffice and Sheets
even when quoted). cardid's own CSV marks what it prefixed and takes the mark off on import, so a
round trip is exact. CSVs that Excel opens carry a UTF-8 BOM (else it mangles é).
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import unicodedata
from collections.abc import Callable, Mapping
from typing import Any

from cardid.collection.fields import STORED, CollectionError, Owned
from cardid.collection.variants import to_app

BOM = "\ufeff"
DANGEROUS = ("=", "+", "-", "@", "\t", "\r")
#: prefixed too, so that a value that really starts with ``'`` survives a round trip
QUOTED = (*DANGEROUS, "'")
CONDITION_NAMES = {
    "NM": "Near Mint",
    "LP": "Lightly Played",
    "MP": "Moderately Played",
    "HP": "Heavily Played",
    "DMG": "Damaged",
}
#: Dragon Shield's condition words: the closest of its scale to each of ours.
DRAGONSHIELD_CONDITIONS = {
    "NM": "NearMint",
    "LP": "LightlyPlayed",
    "MP": "Played",
    "HP": "Poor",
    "DMG": "Poor",
}


def neutralise(value: Any) -> str:
    """A cell a spreadsheet shows as text: formula-looking text gets a leading ``'`` (OWASP)."""
    s = "" if value is None else str(value)
    return "'" + s if s.startswith(QUOTED) else s


def restore(value: str) -> str:
    """Undo :func:`neutralise` on cardid's own export (a ``'`` put before a dangerous character)."""
    return value[1:] if value.startswith("'") and value[1:].startswith(QUOTED) else value


def simple_name(name: str) -> str:
    """TCGplayer's "Simple Name": the name without accents or punctuation."""
    ascii_ = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return " ".join("".join(c if c.isalnum() else " " for c in ascii_).split())


def card_meta(records: Mapping[str, Any], card_id: str) -> dict[str, str]:
    """What the catalog says of a card (name, set, set name, number, rarity; "" where it does not)."""
    r = records.get(card_id)
    return {k: (getattr(r, k, None) or "") if r is not None else "" for k in CATALOG}


def _meta(records: Mapping[str, Any], card_id: str) -> dict[str, str]:
    """:func:`card_meta` as exports write it: the id for a missing name, the set id for a missing set name."""
    m = card_meta(records, card_id)
    return m | {"name": m["name"] or card_id, "set_name": m["set_name"] or m["set_id"]}


def _date(iso: str) -> str:
    return (iso or "")[:10]


def _tcgplayer(o: Owned, m: dict) -> list:
    return [
        o.quantity,
        m["name"],
        simple_name(m["name"]),
        m["set_name"],
        m["number"],
        m["set_id"].upper(),
        to_app("tcgplayer", o.printing),
        CONDITION_NAMES[o.condition],
        o.language,
        m["rarity"],
        "",
        "",
    ]


def _collectr(o: Owned, m: dict) -> list:
    return [
        o.folder or "cardid",
        "Pokemon",
        m["set_name"],
        m["name"],
        m["number"],
        m["rarity"],
        to_app("collectr", o.printing),
        "Ungraded",
        CONDITION_NAMES[o.condition],
        "",
        o.quantity,
        "",
        "",
        "false",
        _date(o.added),
        o.notes,
    ]


def _dragonshield(o: Owned, m: dict) -> list:
    finish = to_app("dragonshield", o.printing)
    return [
        o.folder or "cardid",
        o.quantity,
        0,
        m["name"],
        m["set_id"].upper(),
        m["set_name"],
        m["number"],
        DRAGONSHIELD_CONDITIONS[o.condition],
        finish,
        o.language,
        "",
        _date(o.added),
        "",
        "",
        "",
    ]


def _sort_number(number: str) -> str:
    digits = "".join(c for c in number.split("/")[0] if c.isdigit())
    return str(int(digits)) if digits else ""


def _tcgcollector(o: Owned, m: dict) -> list:
    return [
        "International",
        m["name"],
        m["number"],
        _sort_number(m["number"]),
        m["set_name"],
        m["rarity"],
        to_app("tcgcollector", o.printing),
        o.language,
        CONDITION_NAMES[o.condition],
        o.quantity,
        "",
        "",
        o.notes,
    ]


CATALOG = ("name", "set_id", "set_name", "number", "rarity")
#: cardid's own CSV: the card, what the catalog says of it, then every stored field
OWN_COLUMNS = ["card_id", *CATALOG, *STORED[1:]]


def _own(o: Owned, m: dict) -> list:
    return [o.card_id, *(m[k] for k in CATALOG), *(getattr(o, k) for k in STORED[1:])]


#: format → (header, row, first line, BOM)
CSV_FORMATS: dict[str, tuple[list[str], Callable[[Owned, dict], list], str, bool]] = {
    "tcgplayer": (
        [
            "Quantity",
            "Name",
            "Simple Name",
            "Set",
            "Card Number",
            "Set Code",
            "Printing",
            "Condition",
            "Language",
            "Rarity",
            "Product ID",
            "SKU",
        ],
        _tcgplayer,
        "",
        True,
    ),
    "collectr": (
        [
            "Portfolio Name",
            "Category",
            "Set",
            "Product Name",
            "Card Number",
            "Rarity",
            "Variance",
            "Grade",
            "Card Condition",
            "Average Cost Paid",
            "Quantity",
            "Market Price (As of {today})",
            "Price Override",
            "Watchlist",
            "Date Added",
            "Notes",
        ],
        _collectr,
        "",
        True,
    ),
    # Excel reads the `sep=,` hint only without a BOM
    "dragonshield": (
        [
            "Folder Name",
            "Quantity",
            "Trade Quantity",
            "Card Name",
            "Set Code",
            "Set Name",
            "Card Number",
            "Condition",
            "Printing",
            "Language",
            "Price Bought",
            "Date Bought",
            "LOW",
            "MID",
            "MARKET",
        ],
        _dragonshield,
        "sep=,\r\n",
        False,
    ),
    # tcgcollector.com's CSV (UTF-8 with a BOM); it has no card ids: an import joins on expansion,
    # number, variant and language
    "tcgcollector": (
        [
            "TCG region",
            "Card name",
            "Card number",
            "Card number sorting order",
            "Expansion",
            "Rarity",
            "Card variant",
            "Card language",
            "Card condition",
            "Quantity",
            "Price",
            "Total price",
            "Note",
        ],
        _tcgcollector,
        "",
        True,
    ),
    "cardid": (OWN_COLUMNS, _own, "", True),
}
FORMATS = (*CSV_FORMATS, "json")


def export(rows: list[Owned], records: Mapping[str, Any], fmt: str, today: str | None = None) -> str:
    """The collection as ``fmt`` (``tcgplayer``, ``collectr``, ``dragonshield``, ``tcgcollector``,
    ``cardid``, ``json``)."""
    if fmt == "json":
        out = [{k: v for k, v in o.to_dict().items() if k != "id"} | _meta(records, o.card_id) for o in rows]
        return json.dumps(
            {"format": "cardid-collection-export/1", "cards": out}, ensure_ascii=False, indent=1
        )
    if fmt not in CSV_FORMATS:
        raise CollectionError(f"unknown export format {fmt!r} (known: {', '.join(FORMATS)})")
    header, row, first, bom = CSV_FORMATS[fmt]
    today = today or _dt.date.today().isoformat()
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow([h.replace("{today}", today) for h in header])
    for o in rows:
        w.writerow([v if isinstance(v, int) else neutralise(v) for v in row(o, _meta(records, o.card_id))])
    return (BOM if bom else "") + first + buf.getvalue()
