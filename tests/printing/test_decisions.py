"""Reprints decided by the collector number: ambiguous same-art sets resolved when exactly one
member agrees with what was read, a match moved to the printing its number names, and nothing
changed (but recorded) when the strip is illegible or names no member."""

from dataclasses import replace

import pytest
from tests.conftest import make_tiny_model

from cardid.db.build import build_db
from cardid.decision import refine
from cardid.decision.decide import AMBIGUOUS, MATCH, decide
from cardid.decision.match import MatchConfig, Matcher
from cardid.embed import load_embedder
from cardid.eval.printings import TIE
from cardid.fit.calibrate import synthetic_queries
from cardid.printing.number import readings_from_text
from cardid.printing.ocr import (
    PrintedReading,
    tesseract_available,
)
from cardid.synth.cards import synth_cards


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("numbers")
    cat = synth_cards(tmp / "cat", n=16, seed=3, height=448, reprint_fraction=0.4)
    emb = load_embedder(make_tiny_model(tmp / "model"), "cpu")
    db = build_db(emb, cat, tmp / "db")
    pairs = [(r.id, r.reprint_of) for r in cat if r.reprint_of]
    return cat, emb, db, pairs


def fake_reader(text_of):
    """A reader that 'reads' what ``text_of(image)`` says is printed (OCR taken out of the test)."""
    calls = []

    def read(image, layouts, accept=None):
        calls.append(layouts)
        text = text_of(image)
        return PrintedReading(text, readings_from_text(text), 1.0)

    read.calls = calls
    return read


def lone_card(cat) -> str:
    """A card with no other printing (name) in the catalog."""
    names: dict[str, list[str]] = {}
    for r in cat:
        names.setdefault(r.name, []).append(r.id)
    return next(ids[0] for ids in names.values() if len(ids) == 1)


def printed_text(record):
    return f"{int(record.number):03d}/{record.set_total:03d}"


def ambiguous_cases(cat, emb, db, pairs, reader):
    ids = [c for p in pairs for c in p]
    images, labels = synthetic_queries(cat, ids, seed=5, presets=("default",), crop_width=360)
    m = Matcher(db, emb, MatchConfig(read_numbers=False), calibration=TIE, reader=reader)
    out = []
    for q, t in zip(m.prepare(images), labels, strict=True):
        d = decide(m.candidates(q), TIE)
        if d.kind == AMBIGUOUS and t in {c.card_id for c in d.cards}:
            out.append((m, q, d, t))
    return out


def test_a_legible_number_resolves_every_ambiguous_reprint_set_and_never_wrongly(world):
    cat, emb, db, pairs = world
    truth = {}
    reader = fake_reader(lambda image: printed_text(cat[truth["id"]]))
    cases = ambiguous_cases(cat, emb, db, pairs, reader)
    assert len(cases) >= 0.8 * 2 * len(pairs)
    for m, q, d, t in cases:
        truth["id"] = t
        r = refine.by_number(m, q, d)
        assert (r.kind, r.card_id, r.resolved_by) == (MATCH, t, "number")
        assert r.printed["agrees"] is True and r.printed["agreeing"] == [t]
        assert r.printed["readings"][0]["number"] == str(int(cat[t].number))


def test_illegible_or_foreign_numbers_leave_the_decision_and_say_so(world):
    cat, emb, db, pairs = world
    for text, agrees in (("", None), ("HP 120 weakness", None), ("999/998", False)):
        cases = ambiguous_cases(cat, emb, db, pairs, fake_reader(lambda image, text=text: text))
        m, q, d, _ = cases[0]
        r = refine.by_number(m, q, d)
        assert r.kind == AMBIGUOUS and r.cards == d.cards and r.resolved_by is None
        assert r.printed["agrees"] is agrees and r.printed["agreeing"] == []


def test_a_match_moves_to_the_printing_its_number_names_and_a_lone_card_is_not_read(world):
    cat, emb, db, pairs = world
    a, b = pairs[0]
    reader = fake_reader(lambda image: printed_text(cat[b]))
    m = Matcher(db, emb, calibration=TIE, reader=reader)
    images, _ = synthetic_queries(cat, [a], seed=5, presets=("default",), crop_width=360)
    q = m.prepare(images)[0]
    cands = m.candidates(q)
    top = next(c for c in cands if c.card_id == a)
    from cardid.decision.decide import Decision

    d = refine.by_number(m, q, Decision(MATCH, [top], 1.0, cands))
    assert (d.kind, d.card_id, d.resolved_by, d.printed["agrees"]) == (MATCH, b, "number", False)
    # the same number agreeing with the match: kept, and recorded as agreeing
    reader2 = fake_reader(lambda image: printed_text(cat[a]))
    m2 = Matcher(db, emb, calibration=TIE, reader=reader2)
    d2 = refine.by_number(m2, q, Decision(MATCH, [top], 1.0, cands))
    assert d2.card_id == a and d2.resolved_by is None and d2.printed["agrees"] is True
    # a card with a single printing in the DB is never sent to OCR
    lone = lone_card(cat)
    li, _ = synthetic_queries(cat, [lone], seed=5, presets=("default",), crop_width=360)
    ql = m2.prepare(li)[0]
    cl = m2.candidates(ql)
    before = len(reader2.calls)
    d3 = refine.by_number(m2, ql, Decision(MATCH, [next(c for c in cl if c.card_id == lone)], 1.0, cl))
    assert d3.printed is None and len(reader2.calls) == before


def test_reading_is_off_without_a_reader_and_switchable_by_config(world):
    _, emb, db, _ = world
    assert Matcher(db, emb, MatchConfig(read_numbers=False)).reader is None
    assert (Matcher(db, emb).reader is not None) == tesseract_available()


def test_a_printing_verification_skipped_is_verified_before_a_match_stands(world):
    """Early stop (or a short shortlist) can leave a reprint unverified; the printing check then
    verifies it itself, so the match becomes a question of printing instead of a confident guess."""
    from cardid.decision.decide import Decision

    cat, emb, db, pairs = world
    a, b = pairs[0]
    m = Matcher(db, emb, MatchConfig(read_numbers=False), calibration=TIE)
    images, _ = synthetic_queries(cat, [a], seed=5, presets=("default",), crop_width=360)
    q = m.prepare(images)[0]
    cands = [c for c in m.candidates(q, verify=False) if c.card_id != b]  # b not even shortlisted
    i = next(i for i, c in enumerate(cands) if c.card_id == a)
    cands[i] = top = replace(cands[i], inliers=m.verify(q, cands[i].row).inliers, verified=True)
    d = refine.printings(m, q, Decision(MATCH, [top], 1.0, cands))
    assert d.kind == AMBIGUOUS and {c.card_id for c in d.cards} >= {a, b}
    assert all(c.verified and c.inliers >= refine.SIBLING_MIN_INLIERS for c in d.cards[1:])
    # a card with no other printing in the DB is left a match
    lone = lone_card(cat)
    li, _ = synthetic_queries(cat, [lone], seed=5, presets=("default",), crop_width=360)
    ql = m.prepare(li)[0]
    cl = m.candidates(ql, verify=False)
    tl = next(c for c in cl if c.card_id == lone)
    assert refine.printings(m, ql, Decision(MATCH, [tl], 1.0, cl)).kind == MATCH


def test_the_number_is_evidence_for_the_printing_model(world):
    """Model path: a legible number that agrees with one printing gives it +1 and the others -1; an
    illegible one or a number no printing agrees with gives nothing (a misread costs nothing)."""
    from cardid.decision.printing import FEATURES, PrintingModel

    cat, emb, db, pairs = world
    number_only = PrintingModel([0.0] * (len(FEATURES) - 1) + [5.0], p_min=0.9)
    truth = {}
    for text_of, expect in (
        (lambda image: printed_text(cat[truth["id"]]), "named"),
        (lambda image: "", "none"),
        (lambda image: "999/998", "none"),
    ):
        reader = fake_reader(text_of)
        for _, q, d, t in ambiguous_cases(cat, emb, db, pairs, reader)[:4]:
            truth["id"] = t
            model_matcher = Matcher(
                db, emb, MatchConfig(), calibration=TIE, reader=reader, printing_model=number_only
            )
            s, _, printed, _ = refine.printing_set(model_matcher, q, d)
            numbers = {e.card_id: e.number for e in s.members}
            r = refine.printing(model_matcher, q, d)
            if expect == "named":
                assert numbers[t] == 1.0 and all(v == -1.0 for c, v in numbers.items() if c != t)
                assert (r.kind, r.card_id, r.resolved_by) == (MATCH, t, "number")
                assert r.printed["agrees"] is True and r.probability > 0.99
            else:
                assert set(numbers.values()) == {0.0} and r.kind == AMBIGUOUS
                assert printed["agreeing"] == [] and r.printed["agrees"] is None


def test_the_printing_model_reads_no_number_when_reading_is_off(world):
    from cardid.decision.printing import PrintingModel

    cat, emb, db, pairs = world
    reader = fake_reader(lambda image: "001/100")
    _, q, d, _ = ambiguous_cases(cat, emb, db, pairs, reader)[0]
    m = Matcher(
        db,
        emb,
        MatchConfig(read_numbers=False),
        calibration=TIE,
        reader=reader,
        printing_model=PrintingModel(),
    )
    before = len(reader.calls)
    s, _, printed, _ = refine.printing_set(m, q, d)
    assert printed is None and len(reader.calls) == before and {e.number for e in s.members} == {0.0}
