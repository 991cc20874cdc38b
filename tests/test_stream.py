"""Recognising many photos: bounded memory, JSON lines as they finish, --resume, errors reported."""

import base64
import json
import threading
import weakref

import pytest
from tests.conftest import build_index

import cardid.recognize.inputs as recognize_mod
from cardid.cli import main
from cardid.recognize import Recognizer, expand_inputs, recognize_stream

#: A 64×96 HEIC (red over blue), as an iPhone stores photos: 509 bytes made once with pillow-heif
#: (the lock has only a HEIC decoder, pi-heif).
HEIC_64x96 = base64.b64decode(
    "AAAAHGZ0eXBoZWljAAAAAG1pZjFoZWljbWlhZgAAAVZtZXRhAAAAAAAAACFoZGxyAAAAAAAAAABwaWN0AAAAAAAAAAAAAAAA"
    "AAAAACJpbG9jAAAAAERAAAEAAQAAAAABegABAAAAAAAAAIMAAAAjaWluZgAAAAAAAQAAABVpbmZlAgAAAAABAABodmMxAAAA"
    "AA5waXRtAAAAAAABAAAA1mlwcnAAAAC3aXBjbwAAAHhodmNDAQNwAAAAkAAAAAAAHvAA/P34+AAADwNgAAEAGEABDAH//wNw"
    "AAADAJAAAAMAAAMAHroCQGEAAQArQgEBA3AAAAMAkAAAAwAAAwAeoCCBhZbqSSmubgIaDAgAAAMAyAAAAwAIQGIAAQAHRAHB"
    "crAiQAAAABNjb2xybmNseAABAA0ABoAAAAAUaXNwZQAAAAAAAABAAAAAYAAAABBwaXhpAAAAAAMICAgAAAAXaXBtYQAAAAAA"
    "AAABAAEEgQIDBAAAAIttZGF0AAAAfygBrwY4Wvz9N/kl7///qkb6H+k1+qseX2VJNBb/JFHffzK3f/8Bl0dcuOfMPtZfSr6O"
    "vXxC58ufipqDYwce6ibGqh5Ng003RCd/KAAlCdggu+QPvzKZlTzm5b8uGnTr9WXRI9X+wNjvJbZ8HMeN32UFnGX/fC+/U0Ps"
    "QT6CCeA="
)


@pytest.fixture(scope="module")
def setup(tmp_path_factory, synth_catalog):
    root = tmp_path_factory.mktemp("stream")
    model, db = build_index(root, synth_catalog.root, "--calibrate-cards", "6")
    photos = root / "photos"
    photos.mkdir()
    import shutil

    for i, cid in enumerate(synth_catalog.ids * 3):  # 36 crops
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
    out = [it.to_json()["image"] for it in recognize_stream(rec, files, workers=workers)]
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


def _args(model, db, out, *more):
    return ["--model", str(model), "--db", str(db), "--json", str(out), *more]


def test_json_never_replaces_results_without_being_told(setup, tmp_path, capsys):
    model, db, photos = setup
    files = sorted(photos.iterdir())[:2]
    out = tmp_path / "o.jsonl"
    out.write_text("earlier results\n" * 30)
    assert main(["recognize", *map(str, files), *_args(model, db, out)]) == 1
    assert "already exists: --resume to continue it, --overwrite to replace it" in capsys.readouterr().err
    assert out.read_text() == "earlier results\n" * 30  # nothing lost
    assert main(["recognize", *map(str, files), *_args(model, db, out, "--resume", "--overwrite")]) == 1
    assert main(["recognize", *map(str, files), *_args(model, db, out, "--overwrite")]) == 0
    assert [json.loads(x)["image"] for x in out.read_text().splitlines()] == list(map(str, files))


def test_resume_by_any_spelling_replaces_errors_and_drops_a_torn_line(setup, tmp_path, monkeypatch, capsys):
    import shutil

    model, db, photos = setup
    work = tmp_path / "shots"
    shutil.copytree(photos, work)
    (work / "zz_bad.png").write_bytes(b"not a png yet")
    out = tmp_path / "o.jsonl"
    monkeypatch.chdir(tmp_path)
    first = ["shots/p00.png", "shots/p01.png", "shots/zz_bad.png"]  # relative spellings
    assert main(["recognize", *first, *_args(model, db, out)]) == 1  # one unreadable
    assert ["error" in json.loads(x) for x in out.read_text().splitlines()] == [False, False, True]
    shutil.copy(work / "p02.png", work / "zz_bad.png")  # the file is fixed
    first_line = out.read_text().splitlines()[0]
    with out.open("a") as f:  # an older cardid's duplicate, then a run killed mid-write: a torn line
        f.write(first_line + "\n" + '{"image": "shots/p03.png", "no_ca')
    capsys.readouterr()
    assert main(["recognize", str(work.resolve()), *_args(model, db, out, "--resume")]) == 0  # absolute
    said = capsys.readouterr()
    err, out_text = " ".join(said.err.split()), " ".join(said.out.split())
    assert "line 5 is incomplete" in err and "1 photo(s) recorded as unreadable" in err
    assert "1 photo(s) recorded more than once" in err
    n = len(list(work.iterdir()))
    assert f"resumed: 2 of {n} photo(s) were already in" in out_text
    recs = [json.loads(x) for x in out.read_text().splitlines()]  # every line a whole record
    keys = [str((tmp_path / r["image"]).resolve()) for r in recs]
    assert len(recs) == n and len(set(keys)) == n  # each photo once: nothing recognised twice
    assert not any("error" in r for r in recs)  # the error record was replaced by the new one
    assert recs[0]["image"] == "shots/p01.png" and recs[1]["image"] == "shots/p00.png"  # kept as they were


@pytest.mark.parametrize("line", ["null", "[1, 2]", '{"image": 3}', "{}"])
def test_resume_refuses_a_file_that_is_not_cardid_results(setup, tmp_path, capsys, line):
    model, db, photos = setup
    out = tmp_path / "o.jsonl"
    out.write_text(line + "\n")
    assert main(["recognize", str(photos), *_args(model, db, out, "--resume")]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "line 1 is not a cardid recognize record" in err and "Traceback" not in err
    assert out.read_text() == line + "\n"


def test_pictures_are_never_taken_for_photos(setup, tmp_path):
    import shutil

    model, db, photos = setup
    work = tmp_path / "shots"
    shutil.copytree(photos, work)
    out = tmp_path / "o.jsonl"
    assert main(["recognize", str(work), *_args(model, db, out, "--show", str(work / "show"))]) == 0
    n = len(list(photos.iterdir()))
    assert len(list((work / "show").glob("*.png"))) == n
    for extra in ([], ["--resume"]):  # a later run, or a resume, of the same folder
        o2 = tmp_path / f"o2{len(extra)}.jsonl"
        assert main(["recognize", str(work), *_args(model, db, o2, *extra)]) == 0
        assert len(o2.read_text().splitlines()) == n  # not 2n: cardid's own pictures are skipped
    # pictures into the folder of photos itself would mix them: refused, nothing written
    assert (
        main(
            [
                "recognize",
                str(work / "p00.png"),
                *_args(model, db, tmp_path / "o3.jsonl", "--show", str(work)),
            ]
        )
        == 1
    )
    assert not (tmp_path / "o3.jsonl").exists() or not (tmp_path / "o3.jsonl").read_text()


def test_phone_formats_are_read_in_folders_and_junk_is_skipped(setup, tmp_path):
    from PIL import Image

    from cardid.images import heif_support, load_rgb

    model, db, photos = setup
    assert heif_support()  # pi-heif is in the lock (the heic extra)
    scan = Image.open(sorted(photos.iterdir())[0]).convert("RGB")
    shots = tmp_path / "phone"
    shots.mkdir()
    (shots / "a.heic").write_bytes(HEIC_64x96)
    rgb = load_rgb(shots / "a.heic")
    assert rgb.shape == (96, 64, 3) and rgb[10, 10].tolist() == [200, 30, 30] and rgb[80, 10, 2] > 190
    for name, fmt in [
        ("b.avif", "AVIF"),
        ("c.tiff", "TIFF"),
        ("d.gif", "GIF"),
        ("e.PNG", "PNG"),
    ]:
        scan.save(shots / name, fmt)
    (shots / "._a.heic").write_bytes(b"\x00\x05\x16\x07" + b"\x00" * 60)  # a macOS resource fork
    (shots / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    found = expand_inputs([shots])
    assert [p.name for p in found] == ["a.heic", "b.avif", "c.tiff", "d.gif", "e.PNG"]
    out = tmp_path / "o.jsonl"
    assert main(["recognize", str(shots), *_args(model, db, out)]) == 0  # every one decoded
    recs = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(recs) == 5 and all(r["cards"] and "error" not in r for r in recs)


def test_a_heic_without_its_decoder_says_which_extra_reads_it(tmp_path, monkeypatch):

    import cardid.images as io_mod
    from cardid.errors import ImageError

    heic = tmp_path / "IMG_0001.HEIC"
    heic.write_bytes(HEIC_64x96)
    monkeypatch.setattr(io_mod, "heif_support", lambda: False)
    for load in (lambda: io_mod.load_rgb(heic), lambda: io_mod.decode_rgb(heic.read_bytes())):
        with pytest.raises(ImageError, match=r"HEIC/HEIF photo: .* pip install 'cardid\[heic\]'"):
            load()
    with pytest.raises(ImageError) as e:
        io_mod.decode_rgb(b"neither an image nor anything else" * 4)
    assert "<_io." not in str(e.value) and "corrupt or unsupported image: upload" in str(e.value)


def test_resume_from_another_folder_recognises_nothing_again(setup, tmp_path, monkeypatch, capsys):
    """Records written with relative paths in one folder, resumed from another: every photo is
    found done (before, each was recognised again and recorded twice)."""
    import shutil

    model, db, photos = setup
    work = tmp_path / "a" / "shots"
    work.mkdir(parents=True)
    for p in sorted(photos.iterdir())[:3]:
        shutil.copy(p, work / p.name)
    out = tmp_path / "o.jsonl"
    monkeypatch.chdir(tmp_path / "a")
    assert main(["recognize", "shots", *_args(model, db, out)]) == 0
    assert all(
        json.loads(x)["path"] == str((work / json.loads(x)["image"].split("/")[-1]).resolve())
        for x in out.read_text().splitlines()
    )
    monkeypatch.chdir(tmp_path)
    assert main(["recognize", "a/shots", *_args(model, db, out, "--resume")]) == 0
    assert len(out.read_text().splitlines()) == 3
    assert "resumed: 3 of 3" in " ".join(capsys.readouterr().out.split())


def test_folders_take_every_photo_extension_and_say_what_they_skip(setup, tmp_path, capsys):
    import shutil

    from PIL import Image

    model, db, photos = setup
    first = sorted(photos.iterdir())[0]
    for ext in (".jfif", ".jpe", ".mpo", ".jp2"):
        fmt = "JPEG2000" if ext == ".jp2" else "JPEG"
        Image.open(first).convert("RGB").save(tmp_path / f"card{ext}", fmt)
    shutil.copy(first, tmp_path / "notes.txt")
    assert len(expand_inputs([tmp_path])) == 4
    out = tmp_path / "o.jsonl"
    assert main(["recognize", str(tmp_path), *_args(model, db, out)]) == 0
    recs = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(recs) == 4 and not any("error" in r for r in recs)
    assert "1 file(s) in the folders given are not photos and were skipped (.txt)" in " ".join(
        capsys.readouterr().err.split()
    )
