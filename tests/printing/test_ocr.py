"""Reading the collector number off a card crop (cardid.printing.ocr): Tesseract in process or as a
program, pass by pass, thread-safe, its model found and failures reported, never a crash."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from cardid.fit.calibrate import synthetic_queries
from cardid.printing.ocr import PASSES, engine, engine_info, read_printed, tessdata_dir, tesseract_available
from cardid.synth.cards import synth_cards


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Rendered cards with their numbers printed (only the catalog is used here)."""
    return (
        synth_cards(tmp_path_factory.mktemp("ocr") / "cat", n=8, seed=3, height=448, reprint_fraction=0.4),
    )


@pytest.mark.skipif(not tesseract_available(), reason="tesseract is not installed")
def test_tesseract_reads_the_number_off_rendered_cards(world):
    from cardid.catalog.records import CardRecord
    from cardid.synth.cards import render_stand_in

    ok = 0
    for i, (number, total) in enumerate([("12", 193), ("101", 165), ("7", 102), ("58", 102), ("160", 193)]):
        rec = CardRecord(id=f"s{i}-{number}", name="Pikachu", set_id=f"s{i}", number=number)
        rgba = render_stand_in(rec, total, height=1024)
        rgb = np.where(rgba[..., 3:] > 0, rgba[..., :3], 255).astype(np.uint8)
        got = read_printed(rgb, ("left",))
        assert got.skipped is None and got.ms > 0
        ok += any(r.number.key == number and r.total.value == total for r in got.readings)
    assert ok >= 4
    tiny = read_printed(np.zeros((200, 143, 3), np.uint8), ("left",))
    assert tiny.skipped == "too_small" and tiny.readings == []
    blank = read_printed(np.full((1024, 733, 3), 255, np.uint8), ("left", "right"))
    assert blank.readings == [] and not blank.legible


def fake_program(tmp_path, script: str):
    exe = tmp_path / "tesseract"
    exe.write_text("#!/bin/sh\n" + script)
    exe.chmod(0o755)
    return str(exe)


def test_a_broken_tesseract_leaves_the_decision_to_the_rest(monkeypatch, tmp_path):
    monkeypatch.setenv(
        "CARDID_TESSERACT", fake_program(tmp_path, "echo 'Error opening data file' >&2\nexit 1\n")
    )
    got = read_printed(np.full((1024, 733, 3), 200, np.uint8), ("left",))
    assert got.readings == [] and got.skipped.startswith("ocr_error: tesseract failed: Error opening")


def test_the_tesseract_program_is_used_when_forced_and_read_pass_by_pass(monkeypatch, tmp_path):
    """$CARDID_TESSERACT (or no tesserocr) runs the program, one call per pass, until a reading
    is accepted; a reading nobody accepts sends the search on through every pass and corner."""
    calls = tmp_path / "calls"
    monkeypatch.setenv(
        "CARDID_TESSERACT",
        fake_program(tmp_path, f"cat > /dev/null\necho x >> {calls}\necho 'G PAL EN 012/193'\n"),
    )
    assert engine() == "tesseract"
    card = np.full((1024, 733, 3), 200, np.uint8)
    got = read_printed(card, ("left",))
    assert [r.number.key for r in got.readings] == ["12"] and got.readings[0].set_code == "PAL"
    assert got.passes == 1 and calls.read_text().count("x") == 1
    never = read_printed(card, ("left", "right"), accept=lambda r: r.number.key == "13")
    assert never.passes == 2 * len(PASSES) and never.skipped is None and never.legible


@pytest.mark.skipif(not tesseract_available(), reason="tesseract is not installed")
def test_readers_in_threads_read_what_one_reader_reads(world):
    """One Tesseract per thread (an instance is not thread-safe): the same crops read in two
    threads at once give what they give one after another."""
    cat, *_ = world
    images, _ = synthetic_queries(cat, [r.id for r in cat][:6], seed=1, presets=("default",), crop_width=503)
    serial = [[r.number.key for r in read_printed(im, ("left",)).readings] for im in images]
    with ThreadPoolExecutor(2) as pool:
        threaded = list(
            pool.map(lambda im: [r.number.key for r in read_printed(im, ("left",)).readings], images)
        )
    assert threaded == serial and any(serial)


def test_the_model_folder_comes_from_tessdata_prefix_first_and_reports_say_what_read(monkeypatch, tmp_path):
    assert PASSES[0].name == "grey" and len({(p.name, p.digit_px) for p in PASSES}) == len(PASSES)
    real = tessdata_dir()
    if real is None:
        pytest.skip("no eng.traineddata installed")
    (tmp_path / "eng.traineddata").symlink_to(real / "eng.traineddata")
    monkeypatch.setenv("TESSDATA_PREFIX", str(tmp_path))
    assert tessdata_dir() == tmp_path
    monkeypatch.setenv("TESSDATA_PREFIX", str(tmp_path / "empty"))  # no model there: the next folder
    assert tessdata_dir() == real
    info = engine_info()
    assert info["engine"] in ("tesserocr", "tesseract") and len(info["model_sha256"]) == 64


@pytest.mark.skipif(engine() != "tesserocr", reason="tesserocr is not installed")
def test_a_corrupt_model_file_is_an_ocr_error_not_a_crash(monkeypatch, tmp_path):
    (tmp_path / "eng.traineddata").write_bytes(b"not a model")
    monkeypatch.setenv("TESSDATA_PREFIX", str(tmp_path))
    got = read_printed(np.full((1024, 733, 3), 200, np.uint8), ("left",))
    assert got.readings == [] and got.skipped.startswith("ocr_error: Tesseract could not load")
