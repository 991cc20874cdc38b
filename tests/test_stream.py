"""Recognising many photos: bounded memory, JSON lines as they finish, --resume, errors reported."""

import json
import threading
import weakref

import pytest
from tests.conftest import build_index

import cardid.recognize as recognize_mod
from cardid.cli import main
from cardid.recognize import Recognizer, expand_inputs, recognize_stream


@pytest.fixture(scope="module")
def setup(tmp_path_factory, synth_catalog):
    root = tmp_path_factory.mktemp("stream")
    model, db = build_index(root, synth_catalog.root, "--calibrate-cards", "6")
    photos = root / "photos"
    photos.mkdir()
    import shutil

    for i, cid in enumerate(synth_catalog.ids * 3):  # 18 crops
        shutil.copy(synth_catalog.image_path(cid), photos / f"p{i:02d}.png")
    return model, db, photos


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_peak_decoded_images_never_exceed_the_workers(setup, monkeypatch, workers):
    model, db, photos = setup
    alive, peak, lock = [0], [0], threading.Lock()
    real = recognize_mod.load_rgb

    def counting(path):
        im = real(path)
        with lock:
            alive[0] += 1
            peak[0] = max(peak[0], alive[0])

        def gone():
            with lock:
                alive[0] -= 1

        weakref.finalize(im, gone)
        return im

    monkeypatch.setattr(recognize_mod, "load_rgb", counting)
    rec = Recognizer.open(model, db, None)
    files = expand_inputs([photos])
    out = [r["image"] for r, _ in recognize_stream(rec, files, workers=workers)]
    assert out == [str(f) for f in files]  # in order, every one
    assert 1 <= peak[0] <= workers


def test_unreadable_files_are_reported_and_the_run_goes_on(setup, tmp_path, capsys):
    model, db, photos = setup
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    good = sorted(photos.iterdir())[:2]
    args = ["recognize", str(good[0]), str(bad), str(good[1]), "--model", str(model), "--db", str(db)]
    assert main([*args, "--json", str(tmp_path / "o.jsonl")]) == 1  # not all files could be read
    recs = [json.loads(x) for x in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert [("error" in r) for r in recs] == [False, True, False] and "corrupt" in recs[1]["error"]
    assert "1 of 3 file(s) unreadable" in capsys.readouterr().err
    assert main([*args, "--strict"]) == 1  # the old behaviour: stop at the first one


def test_resume_skips_what_is_done_and_refuses_another_models_file(setup, tmp_path, capsys):
    model, db, photos = setup
    files = sorted(photos.iterdir())
    out = tmp_path / "o.jsonl"
    base = ["--model", str(model), "--db", str(db), "--json", str(out)]
    assert main(["recognize", *map(str, files[:5]), *base]) == 0
    first = out.read_text().splitlines()
    assert main(["recognize", str(photos), *base, "--resume"]) == 0  # a folder: all 18
    lines = out.read_text().splitlines()
    assert lines[:5] == first and len(lines) == len(files)  # the 5 kept, 13 appended, none twice
    assert [json.loads(x)["image"] for x in lines] == [str(f) for f in files]
    other = tmp_path / "other.jsonl"
    other.write_text(json.dumps({"image": str(files[0]), "model": "0123456789abcdef"}) + "\n")
    capsys.readouterr()
    assert (
        main(
            [
                "recognize",
                str(photos),
                "--model",
                str(model),
                "--db",
                str(db),
                "--json",
                str(other),
                "--resume",
            ]
        )
        == 1
    )
    assert "written with model '0123456789abcdef'" in capsys.readouterr().err
    assert (
        main(["recognize", str(photos), "--model", str(model), "--db", str(db), "--resume"]) == 1
    )  # needs --json


def test_inputs_from_folders_globs_and_csvs(setup, tmp_path):
    _, _, photos = setup
    files = sorted(photos.iterdir())
    (tmp_path / "list.csv").write_text("\ufefffile,notes\n" + "".join(f"{f},x\n" for f in files[:3]))
    assert expand_inputs([tmp_path / "list.csv"]) == files[:3]
    assert expand_inputs([str(photos / "p0*.png")]) == [f for f in files if f.name.startswith("p0")]
    assert expand_inputs([photos, files[0]]) == files  # a path listed twice is recognised once
    with pytest.raises(Exception, match="no files match"):
        expand_inputs([str(tmp_path / "*.jpg")])
