"""What a collection row holds, and the checks every edit passes (one clear error, never a
half-written row)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from cardid.collection.variants import PRINTINGS as _PRINTINGS
from cardid.errors import CardIDError

FORMAT = "cardid-collection/1"
CONDITIONS = ("NM", "LP", "MP", "HP", "DMG")
#: The variants a collector records: an edition stamp and a finish (:mod:`cardid.collection.variants`).
PRINTINGS = _PRINTINGS
FIELDS = ("card_id", "quantity", "condition", "language", "printing", "folder", "photo", "notes")
#: A row's identity besides its id: the same card in the same state merges into one row's quantity.
SAME = ("card_id", "condition", "language", "printing", "folder")


class CollectionError(CardIDError):
    """A collection file that cannot be used (not cardid's, locked, read-only) or a bad edit."""


@dataclass
class Owned:
    """One row of the collection."""

    id: int
    card_id: str
    quantity: int = 1
    condition: str = "NM"
    language: str = "English"
    printing: str = "Normal"
    folder: str = ""
    added: str = ""
    photo: str = ""
    notes: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


#: the columns a row keeps besides its id, and what an added row gets when it does not say
STORED = tuple(f.name for f in fields(Owned) if f.name != "id")
DEFAULTS = {f.name: f.default for f in fields(Owned) if f.name in FIELDS and f.name != "card_id"}


@dataclass
class Change:
    """What one edit did (for the page and ``cardid collection undo``)."""

    action: str
    row: Owned | None
    before: Owned | None = None
    merged: bool = False
    info: dict[str, Any] = field(default_factory=dict)


#: copies of one card in one row: far more than anyone owns, far below where SQLite's sums overflow
MAX_QUANTITY = 1_000_000


def quantity(value: Any) -> int:
    """A row's quantity: a whole number from 1 to :data:`MAX_QUANTITY`, given as a number or as
    digits; ``2.9``, ``true``, ``1e30``, ``Infinity`` are errors, never quietly rounded."""
    shown = repr(value)[:40]
    if isinstance(value, bool):
        raise CollectionError(f"quantity must be a whole number, got {shown}")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and value.strip().isdigit() and len(value.strip()) <= 12:
        value = int(value.strip())
    if not isinstance(value, int):
        raise CollectionError(f"quantity must be a whole number, got {shown}")
    if value < 1:
        raise CollectionError("quantity must be at least 1 (remove the row instead)")
    if value > MAX_QUANTITY:
        raise CollectionError(f"quantity {value:,} is over {MAX_QUANTITY:,} copies of one card")
    return value


def check_fields(values: dict[str, Any]) -> dict[str, Any]:
    """Edited fields, checked: a bad value is one clear error, never a half-written row."""
    unknown = sorted(set(values) - set(FIELDS))
    if unknown:
        raise CollectionError(f"unknown field(s) {', '.join(unknown)} (fields: {', '.join(FIELDS)})")
    out = dict(values)
    if "quantity" in out:
        out["quantity"] = quantity(out["quantity"])
    if "condition" in out and out["condition"] not in CONDITIONS:
        raise CollectionError(f"condition must be one of {', '.join(CONDITIONS)}, got {out['condition']!r}")
    if "printing" in out and out["printing"] not in PRINTINGS:
        raise CollectionError(f"printing must be one of {', '.join(PRINTINGS)}, got {out['printing']!r}")
    for k in ("card_id", "language", "folder", "photo", "notes"):
        if k in out:
            if not isinstance(out[k], str):
                raise CollectionError(f"{k} must be text, got {out[k]!r}")
            if len(out[k]) > 500:
                raise CollectionError(f"{k} is longer than 500 characters")
    if "card_id" in out and not out["card_id"].strip():
        raise CollectionError("card_id is empty")
    return out
