"""Importing a collection: cardid's own export back (exactly), or a file another app exported
(TCGplayer app, Collectr, Dragon Shield, TCG Collector), each of its cards found in the catalog by set and
number (its name deciding between two cards that share both).

The format is told from the header. Every row is checked before anything is kept: an unknown
column or card id, a row naming no card of the catalog (or two), a condition or printing the
collection does not know — one error naming the first few, with their lines, and nothing imported.
Cells are read back through :func:`~cardid.collection.formats.restore`, so a name that an export
neutralised (``'=…``) comes back as it was, and a formula is only ever text.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cardid.collection.fields import FIELDS, PRINTINGS, CollectionError, check_fields
from cardid.collection.formats import (
    BOM,
    CONDITION_NAMES,
    DRAGONSHIELD_CONDITIONS,
    OWN_COLUMNS,
    restore,
    simple_name,
)
from cardid.collection.variants import from_app

#: what an app's export names its folder when a row has none (the exports write it so)
DEFAULT_FOLDER = "cardid"
#: the columns that tell each app's export apart (and that an import of it reads)
SIGNATURES = {
    "tcgplayer": ("Quantity", "Name", "Set", "Card Number", "Printing", "Condition"),
    "collectr": ("Portfolio Name", "Set", "Product Name", "Card Number", "Quantity"),
    "dragonshield": ("Folder Name", "Quantity", "Card Name", "Set Code", "Card Number"),
    "tcgcollector": ("TCG region", "Card name", "Card number", "Expansion", "Card variant", "Quantity"),
}


def _key(s: str) -> str:
    return s.lower().replace(" ", "")


_CONDITIONS = {_key(v): k for k, v in CONDITION_NAMES.items()} | {_key(k): k for k in CONDITION_NAMES}
#: Dragon Shield's scale read back: each of its words to the nearest of ours
_DRAGONSHIELD = {_key(v): k for k, v in reversed(DRAGONSHIELD_CONDITIONS.items())} | {
    "mint": "NM",
    "excellent": "LP",
    "good": "LP",
    "lightplayed": "LP",
}


@dataclass
class Imported:
    format: str  # tcgplayer | collectr | dragonshield | cardid | json
    rows: list[dict[str, Any]]


#: the largest export read (a 100,000-row collection is about 15 MB)
MAX_IMPORT_BYTES = 256 << 20
#: the longest cell read (csv's own default limit, left as it is): a longer one is one clear error
MAX_CELL = 131_072


def decode_export(data: bytes, name: str = "the file") -> str:
    """An export's text, whatever its encoding: UTF-8 (with or without a BOM), UTF-16 (what Excel
    saves as "Unicode text"), else Windows-1252 (Excel's "CSV" on Windows)."""
    if len(data) > MAX_IMPORT_BYTES:
        raise CollectionError(f"{name} is over {MAX_IMPORT_BYTES >> 20} MB: not a collection export")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise CollectionError(f"{name} starts as UTF-16 but is not") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        raise CollectionError(f"{name} is neither UTF-8, UTF-16 nor Windows-1252 text") from None


def parse_import(text: str, records: Mapping[str, Any] | None = None) -> Imported:
    """The rows of an export (cardid's own CSV or JSON, or another app's CSV), checked. ``records``
    (card id → catalog record): the card ids an import may name; another app's rows are found
    in it. Without it, only cardid's own export can be read (its ids are not checked)."""
    text = text.lstrip(BOM)
    if text.lstrip().startswith("{"):
        return Imported("json", _check_ids(_own_json(text), records))
    delimiter = ","
    first = text.split("\n", 1)[0].strip().strip('"').replace(" ", "")
    if first.lower().startswith("sep=") and len(first) == 5:  # Excel's hint (Dragon Shield writes it)
        delimiter = first[4]
        text = text.split("\n", 1)[1] if "\n" in text else ""
    try:
        return _parse_csv(text, records, delimiter)
    except csv.Error as e:
        raise CollectionError(
            f"not a CSV file cardid reads ({e}; cells of {MAX_CELL:,} characters at most)"
        ) from None


def _parse_csv(text: str, records: Mapping[str, Any] | None, delimiter: str) -> Imported:
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter, restkey=_EXTRA)
    cols = reader.fieldnames or []
    if "card_id" in cols:
        return Imported("cardid", _check_ids(_own_csv(reader, cols), records))
    fmt = next((f for f, sig in SIGNATURES.items() if set(sig) <= set(cols)), None)
    if fmt is None:
        known = ", ".join(["cardid", "json", *SIGNATURES])
        raise CollectionError(
            f"not an export cardid reads (columns {', '.join(cols[:6])}…); it reads {known}"
        )
    if not records:
        raise CollectionError(f"importing a {fmt} export finds its cards in the catalog: give --db")
    return Imported(fmt, _app_rows(fmt, reader, CardFinder(records)))


_EXTRA = "\0extra"  # where DictReader puts the cells of a row longer than its header


def _own_json(text: str) -> list[dict[str, Any]]:
    try:
        doc = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as e:
        why = e if isinstance(e, json.JSONDecodeError) else "nested too deep"
        raise CollectionError(f"not a cardid collection export (JSON: {why})") from None
    if not isinstance(doc, dict) or doc.get("format") != "cardid-collection-export/1":
        raise CollectionError("not a cardid collection export (no format cardid-collection-export/1)")
    cards = doc.get("cards", [])
    if not isinstance(cards, list):
        raise CollectionError("a cardid JSON export's `cards` must be a list of rows")
    rows = []
    for i, r in enumerate(cards, start=1):
        if not isinstance(r, dict):
            raise CollectionError(
                f"card {i} of the JSON export is not a row ({type(r).__name__}); nothing was imported"
            )
        row = {k: v for k, v in r.items() if k in FIELDS or k == "added"}
        for k, v in row.items():
            if k != "quantity" and not isinstance(v, str):
                raise CollectionError(
                    f"card {i} of the JSON export: {k} must be text, got {type(v).__name__}"
                )
        rows.append(row)
    return rows


def _own_csv(reader: csv.DictReader, cols: list[str]) -> list[dict[str, Any]]:
    unknown = [c for c in cols if c not in OWN_COLUMNS]
    if unknown:
        raise CollectionError(f"cardid's own CSV with unknown column(s) {', '.join(map(repr, unknown))}")
    rows = []
    for r in reader:
        if _EXTRA in r or None in r.values():
            raise CollectionError(
                f"line {reader.line_num} has {'more' if _EXTRA in r else 'fewer'} cells than the header's "
                f"{len(cols)}; nothing was imported"
            )
        d = {k: restore(v) for k, v in r.items() if k in FIELDS or k == "added"}
        rows.append({k: v for k, v in d.items() if v != "" or k in ("folder", "photo", "notes")})
    return rows


def _check_ids(rows: list[dict[str, Any]], records: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    if records:
        bad = sorted({str(r.get("card_id")) for r in rows if str(r.get("card_id", "")) not in records})
        if bad:
            raise CollectionError(
                f"{len(bad)} unknown card id(s), e.g. {', '.join(bad[:3])}; nothing was imported"
            )
    return rows


def _number(n: str) -> str:
    """A collector number as apps write it (``004/102``, ``4``, ``SWSH001``) → one key."""
    head = n.strip().split("/")[0].strip().lower()
    return head.lstrip("0") or head


def _text(s: str) -> str:
    return simple_name(s).lower()


class CardFinder:
    """A card of the catalog from what an app's export says of it: set (code or name) and number,
    then the name between cards that share both."""

    def __init__(self, records: Mapping[str, Any]):
        self.by: dict[tuple[str, str], list[str]] = {}
        self.names: dict[str, str] = {}
        for cid, r in records.items():
            number = _number(str(getattr(r, "number", "") or ""))
            self.names[cid] = _text(str(getattr(r, "name", "") or ""))
            for s in {
                str(getattr(r, "set_id", "") or "").lower(),
                _text(str(getattr(r, "set_name", "") or "")),
            }:
                if s and number:
                    self.by.setdefault((s, number), []).append(cid)

    def find(self, number: str, name: str, *sets: str) -> list[str]:
        n = _number(number)
        found: list[str] = []
        for s in sets:
            for key in {s.strip().lower(), _text(s)}:
                found += [c for c in self.by.get((key, n), []) if c not in found]
        if len(found) > 1 and name:
            same = [c for c in found if self.names[c] == _text(name)]
            found = same or found
        return found


def _condition(value: str, words: dict[str, str]) -> str | None:
    v = _key(value.strip())
    if v in words:
        return words[v]
    # TCGplayer writes the finish after the condition: "Near Mint Holofoil"
    return next((words[w] for w in sorted(words, key=len, reverse=True) if v.startswith(w)), None)


#: where each app's export says what (the columns an import reads)
_COLUMNS = {
    "tcgplayer": {
        "name": "Name",
        "number": "Card Number",
        "sets": ("Set Code", "Set"),
        "condition": "Condition",
        "printing": "Printing",
        "language": "Language",
    },
    "collectr": {
        "name": "Product Name",
        "number": "Card Number",
        "sets": ("Set",),
        "condition": "Card Condition",
        "printing": "Variance",
        "folder": "Portfolio Name",
        "notes": "Notes",
        "added": "Date Added",
    },
    "dragonshield": {
        "name": "Card Name",
        "number": "Card Number",
        "sets": ("Set Code", "Set Name"),
        "condition": "Condition",
        "printing": "Printing",
        "language": "Language",
        "folder": "Folder Name",
        "added": "Date Bought",
    },
    "tcgcollector": {
        "name": "Card name",
        "number": "Card number",
        "sets": ("Expansion",),
        "condition": "Card condition",
        "printing": "Card variant",
        "language": "Card language",
        "notes": "Note",
    },
}


def _app_rows(fmt: str, reader: csv.DictReader, finder: CardFinder) -> list[dict[str, Any]]:
    rows, problems = [], []
    words = _DRAGONSHIELD if fmt == "dragonshield" else _CONDITIONS | _DRAGONSHIELD
    col = _COLUMNS[fmt]
    for raw in reader:
        line = reader.line_num + (fmt == "dragonshield")  # its first line is Excel's sep= hint
        r = {k: restore(v or "").strip() for k, v in raw.items() if k != _EXTRA and isinstance(v, str)}
        name, number = r.get(col["name"], ""), r.get(col["number"], "")
        sets = [r[k] for k in col["sets"] if r.get(k)]
        found = finder.find(number, name, *sets)
        where = f"line {line}: {name or '?'}, {' / '.join(sets) or 'no set'} #{number}"
        if len(found) != 1:
            problems.append(f"{where} ({'no such card' if not found else 'one of ' + ', '.join(found[:3])})")
            continue
        row: dict[str, Any] = {"card_id": found[0], "quantity": r.get("Quantity") or "1"}
        said = r.get(col["condition"], "")
        if said:
            row["condition"] = _condition(said, words)
            if row["condition"] is None:
                problems.append(f"{where} (condition {said!r})")
                continue
        word = r.get(col["printing"], "")
        if word:
            printing = from_app(fmt, word)
            if printing is None:
                problems.append(f"{where} (printing {word!r}; known: {', '.join(PRINTINGS)})")
                continue
            row["printing"] = printing
        if r.get(col.get("language", "")):
            row["language"] = r[col["language"]]
        if col.get("folder") in r:
            folder = r[col["folder"]]
            row["folder"] = "" if folder == DEFAULT_FOLDER else folder
        if r.get(col.get("notes", "")):
            row["notes"] = r[col["notes"]]
        try:
            check_fields(row)
        except CollectionError as e:
            problems.append(f"{where} ({e})")
            continue
        if r.get(col.get("added", "")):
            row["added"] = r[col["added"]]
        rows.append(row)
    if problems:
        raise CollectionError(
            f"{len(problems)} row(s) of the {fmt} export cannot be kept, e.g. {'; '.join(problems[:3])}; "
            "nothing was imported"
        )
    return rows
