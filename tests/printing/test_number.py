import json
from pathlib import Path

import pytest

from cardid.catalog.records import CardRecord
from cardid.printing.number import Reading, agrees, consistent, parse_number, readings_from_text

TCG = Path(__file__).resolve().parents[2] / ".." / "shared" / "realdata" / "pokemon-tcg-data"


def rec(cid, number, total=None, code=None, name="Pikachu"):
    return CardRecord(
        id=cid, name=name, set_id=cid.split("-")[0], number=number, set_total=total, set_code=code
    )


@pytest.mark.parametrize(
    ("catalog", "key"),
    [
        ("12", "12"),
        ("012", "12"),
        ("201", "201"),
        ("TG29", "TG29"),
        ("SV107", "SV107"),
        ("GG01", "GG1"),
        ("RC5", "RC5"),
        ("H12", "H12"),
        ("SWSH050", "SWSH50"),
        ("SM30a", "SM30a"),
        ("102a", "102a"),
        ("TWO", "TWO"),
        ("A", "A"),
        ("?", "?"),
        ("!", "!"),
    ],
)
def test_every_catalog_number_format_has_one_canonical_key(catalog, key):
    assert parse_number(catalog).key == key
    assert parse_number("") is None and parse_number(None) is None


@pytest.mark.parametrize(
    ("text", "number", "total", "code"),
    [
        ("PAL EN 012/193", "12", "193", "PAL"),
        ("G PAL EN 2O1/193", "201", "193", "PAL"),  # regulation mark, OCR's O for 0
        ("Illus. Mitsuhiro Arita 58/102 *", "58", "102", None),
        ("4 /l02", "4", "102", None),  # l for 1, a space before the slash
        ("TG29/TG30", "TG29", "TG30", None),
        ("SV107/SV122", "SV107", "SV122", None),
        ("GG01/GG70", "GG1", "GG70", None),
        ("12a/100", "12a", "100", None),
    ],
)
def test_printed_forms_parse(text, number, total, code):
    r = readings_from_text(text)[0]
    assert (r.number.key, r.total.key, r.set_code) == (number, total, code)


def test_numbers_alone_are_promo_forms_only_and_noise_reads_nothing():
    assert [r.number.key for r in readings_from_text("SWSH050")] == ["SWSH50"]
    assert readings_from_text("HP 120  weakness x2  retreat") == []  # no invented number
    assert readings_from_text("") == []
    assert readings_from_text("ポケモン 12") == []  # a bare number is not a collector number


def test_agreement_checks_number_total_and_code():
    pal = rec("sv2-12", "12", 193, "PAL")
    r = readings_from_text("PAL EN 012/193")[0]
    assert agrees(r, pal)
    assert not agrees(r, rec("sv1-12", "12", 198, "SVI"))  # same number, other set
    assert not agrees(r, rec("sv2-13", "13", 193, "PAL"))
    secret = readings_from_text("201/193")[0]
    assert agrees(secret, rec("sv2-201", "201", 193))  # numbered past the total
    assert agrees(readings_from_text("58/102")[0], rec("base1-58", "58"))  # no total known: number decides
    assert not agrees(readings_from_text("TG29/TG30")[0], rec("x-TG29", "29"))


def test_consistent_picks_the_one_printing_among_reprints():
    base = rec("base1-58", "58", 102, name="Pikachu")
    evo = rec("xy12-35", "35", 108, "EVO", name="Pikachu")
    assert consistent(readings_from_text("58/102"), [base, evo]) == [base]
    assert consistent(readings_from_text("35/108"), [base, evo]) == [evo]
    assert consistent([Reading(parse_number("999"))], [base, evo]) == []  # a number no set has


@pytest.mark.realdata
@pytest.mark.skipif(not TCG.is_dir(), reason="../shared/realdata is absent")
def test_every_card_of_the_real_catalog_reads_back_from_its_printed_form():
    from cardid.catalog.pokemontcg import read_pokemontcg

    sets = {s["id"]: s for s in json.loads((TCG / "sets" / "en.json").read_text())}
    records = read_pokemontcg(TCG)
    assert len(records) == 19120
    bad = []
    for r in records:
        n = parse_number(r.number)
        if n.value is None:  # letters or symbols alone: printed as such, nothing to read back
            continue
        printed = f"{n.prefix}{n.value:03d}{n.suffix}/{sets[r.set_id]['printedTotal']}"
        if n.prefix and n.prefix not in ("SWSH", "SM", "XY", "BW", "DP", "HGSS", "SVP"):
            printed = f"{n.prefix}{n.value:02d}{n.suffix}/{n.prefix}{30}"
        got = readings_from_text(printed)
        if not got or not agrees(got[0], r):
            bad.append((r.id, printed, [g.to_dict() for g in got]))
    assert bad == []


def test_a_symbol_read_as_a_leading_digit_leaves_the_padded_number_as_an_alternative():
    keys = [r.number.key for r in readings_from_text("© 203/094")]
    assert keys == ["203", "3"]  # a secret rare 203, or 003 after a misread symbol: the catalog decides
    assert [r.number.key for r in readings_from_text("201/193")] == ["201", "1"]
    assert [r.number.key for r in readings_from_text("160/193")] == ["160"]  # within the total: as read
    assert [r.number.key for r in readings_from_text("D OL0/353")] == ["10"]


def test_a_total_one_digit_off_agrees_only_when_asked():
    r = readings_from_text("008/153")[0]
    card = rec("syn3-8", "8", 151)
    assert not agrees(r, card) and agrees(r, card, loose_total=True)
    assert not agrees(readings_from_text("008/353")[0], card, loose_total=True)  # two digits off
    assert not agrees(readings_from_text("009/151")[0], card, loose_total=True)  # the number must match
