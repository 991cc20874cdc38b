"""The printed identity of a card as text: collector number, printed total and set code, parsed,
and matched against the catalog.

What the catalog's ``number`` field holds (pokemontcg.io, 19,120 cards): digits (17,499: ``12``,
``201``), a letter prefix and digits (1,510: ``TG29``, ``SV107``, ``GG01``, ``RC5``, ``H12``,
``SWSH050``, ``SM30``), digits and a letter suffix (``102a``), both (``SM30a``), letters alone
(``A``, ``TWO``) and the symbols ``!`` and ``?`` (ex10's Unown). A card prints it zero-padded over
its set's printed total (``012/193``, a secret rare ``201/193``), over a subset's total
(``TG29/TG30``, ``SV107/SV122``), or alone (promos: ``SWSH050``); from Scarlet & Violet on, the set
code and language come first (``PAL EN 012/193``). OCR confuses O/0 and I/l/1 in digits: the parser
takes those back.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cardid.catalog.records import CardRecord

_DIGIT_FIX = str.maketrans(
    {"O": "0", "o": "0", "D": "0", "Q": "0", "I": "1", "l": "1", "L": "1", "|": "1", "i": "1"}
)
_DIG = r"[0-9OoDQIlL|i]"


@dataclass(frozen=True)
class Number:
    """A collector number: letter prefix, digits (``None`` for letters alone), letter suffix."""

    prefix: str
    value: int | None
    suffix: str = ""

    @property
    def key(self) -> str:
        """Canonical form (no zero padding, upper prefix, lower suffix): ``012`` → ``12``."""
        return f"{self.prefix}{'' if self.value is None else self.value}{self.suffix}"

    def __str__(self) -> str:
        return self.key


_CATALOG_NUMBER = re.compile(r"^\s*([A-Za-z]*?)\s*0*(\d+)([A-Za-z]?)\s*$")


def parse_number(s: str | None) -> Number | None:
    """A catalog ``number`` (or a clean printed one) as a :class:`Number`; ``None`` if empty.
    Letters alone (``TWO``) and symbols (``?``) are kept verbatim as a prefix."""
    if s is None or not str(s).strip():
        return None
    s = str(s).strip()
    m = _CATALOG_NUMBER.match(s)
    if m:
        return Number(m.group(1).upper(), int(m.group(2)), m.group(3).lower())
    return Number(s.upper(), None)


@dataclass(frozen=True)
class Reading:
    """What was read off one card: a number, the total it was printed over, the set code."""

    number: Number
    total: Number | None = None
    set_code: str | None = None

    def to_dict(self) -> dict:
        return {
            "number": self.number.key,
            "total": self.total.key if self.total else None,
            "set_code": self.set_code,
        }


#: every letter prefix a collector number has in the catalog (pokemontcg.io, 2025-05)
PREFIXES = (
    "SWSH",
    "HGSS",
    "SVP",
    "SM",
    "SV",
    "XY",
    "TG",
    "BW",
    "GG",
    "RC",
    "DP",
    "SH",
    "SL",
    "AR",
    "RT",
    "H",
)
#: letters OCR reads for a digit, when they stand where a digit belongs (``S8/102`` is 58/102)
_LETTER_DIGIT = {"S": "5", "B": "8", "G": "6", "Z": "2", "O": "0", "D": "0", "I": "1", "T": "7"}

_SLASHED = re.compile(
    rf"(?:(?P<code>\b[A-Z]{{3}}[A-Z0-9]?)\s+(?:[A-Z]{{2}}\s+)?)?(?P<np>[A-Z]{{1,4}})?\s?(?P<n>{_DIG}{{1,3}})"
    rf"(?P<ns>[a-z])?\s*[/⁄∕]\s*(?P<tp>[A-Z]{{1,4}})?\s?(?P<t>{_DIG}{{1,3}})(?![0-9])"
)
#: numbers printed without a total: promos and subsets (needs a letter prefix, or it is any digit run)
_ALONE = re.compile(
    rf"\b(?P<np>SWSH|HGSS|SVP|SM|XY|BW|DP|SV|TG|GG|RC|SL)\s?(?P<n>{_DIG}{{1,3}})(?P<ns>[a-z])?\b"
)


def _known_prefix(letters: str) -> str | None:
    """The catalog prefix ``letters`` end in (``G PAL`` glued onto ``TG``…), or ``None``."""
    return next((p for p in PREFIXES if letters.endswith(p)), None)


def _digits(s: str) -> int:
    if not re.search(r"[0-9]", s):
        raise ValueError(f"no digit in {s!r}")  # 'on / Ni' of '©2023 Pokémon / Nintendo'
    return int(s.translate(_DIGIT_FIX))


def _numbers(prefix: str | None, digits: str, suffix: str | None) -> list[Number]:
    """The number as printed, and what else it may be when OCR glued letters onto it: a prefix
    no card has is dropped (``G`` of a regulation mark, the box of ``PAL EN``), or, one letter
    that looks like a digit, read as that digit (``S8`` → 58)."""
    value, suffix = _digits(digits), (suffix or "").lower()
    prefix = (prefix or "").upper()
    if not prefix:
        return [Number("", value, suffix)]
    out = []
    known = _known_prefix(prefix)
    if known:
        out.append(Number(known, value, suffix))
    if prefix[-1] in _LETTER_DIGIT and len(digits) < 3:
        out.append(Number("", int(_LETTER_DIGIT[prefix[-1]] + digits.translate(_DIGIT_FIX)), suffix))
    out.append(Number("", value, suffix))
    return out


def readings_from_text(text: str) -> list[Reading]:
    """Every number (with its total and set code when printed) in OCR text, in reading order, with
    the alternatives a glued letter allows; numbers over a total first, numbers alone only when no
    slashed one was found. Nothing number-like: an empty list, never a guess."""
    out: list[Reading] = []
    for m in _SLASHED.finditer(text):
        try:
            nums = _numbers(m.group("np"), m.group("n"), m.group("ns"))
            tp = (m.group("tp") or "").upper()
            tot = Number(_known_prefix(tp) or "", _digits(m.group("t")))
        except ValueError:
            continue
        code = m.group("code")
        if tot.value is not None and not tot.prefix:
            # numbered past the total: a secret rare, or a symbol before a zero-padded number read
            # as a digit (``© 003/094`` → ``203/094``); both are kept, the catalog decides
            nums += [
                Number("", n.value % 100, n.suffix)
                for n in list(nums)
                if not n.prefix and n.value is not None and n.value >= 100 and n.value > tot.value
            ]
        out += [Reading(n, tot, code) for n in nums]
    if not out:
        for m in _ALONE.finditer(text):
            try:
                out += [Reading(n) for n in _numbers(m.group("np"), m.group("n"), m.group("ns"))[:1]]
            except ValueError:
                continue
    return list(dict.fromkeys(out))


def _one_digit_off(a: int, b: int) -> bool:
    sa, sb = str(a), str(b)
    return len(sa) == len(sb) and sum(x != y for x, y in zip(sa, sb, strict=True)) == 1


def agrees(reading: Reading, record: CardRecord, loose_total: bool = False) -> bool:
    """Whether the reading fits this printing: the same number and, where both are known, the
    printed total (a secret rare is numbered past it) and the set code. ``loose_total`` lets the
    total be one digit off (OCR's commonest slip once the number itself is right)."""
    num = parse_number(record.number)
    if num is None or num.key != reading.number.key:
        return False
    total = record.set_total
    plain = reading.total is not None and not reading.total.prefix and not num.prefix
    off = plain and total and reading.total.value != int(total)
    if off and not (loose_total and _one_digit_off(reading.total.value, int(total))):
        return False
    if reading.total is not None and reading.total.prefix and reading.total.prefix != num.prefix:
        return False  # TG29/TG30: the total's prefix is the subset's
    code = record.set_code
    return not (reading.set_code and code and reading.set_code.upper() != str(code).upper())


def consistent(readings: Sequence[Reading], records: Iterable[CardRecord]) -> list[CardRecord]:
    """The records that some reading agrees with (in the records' order)."""
    return [r for r in records if any(agrees(x, r) for x in readings)]
