"""Bad input to every command: exit 1 with one `error:` line (or a usage error, exit 2), never a
traceback. Files, folders and JSON of the wrong kind or shape, out-of-range numbers."""

import json
import shutil

import pytest
from tests.conftest import make_tiny_model

from cardid.cli import main


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    t = tmp_path_factory.mktemp("ws")
    assert main(["synth", "cards", "--n", "5", "--out", str(t / "cat"), "--height", "96"]) == 0
    m = make_tiny_model(t / "model")
    assert (
        main(
            [
                "index",
                "build",
                "--model",
                str(m),
                "--catalog",
                str(t / "cat"),
                "--out",
                str(t / "db"),
                "--calibrate-cards",
                "5",
            ]
        )
        == 0
    )
    (t / "afile").write_text("x")
    (t / "adir").mkdir()
    (t / "list.yaml").write_text("- 1\n- 2\n")

    def model_with(name, **fields):
        d = shutil.copytree(m, t / name)
        meta = json.loads((d / "model.json").read_text())
        meta.update(fields)
        (d / "model.json").write_text(json.dumps(meta))

    model_with("m-no-weights", weights=None)
    model_with("m-bad-pre", preprocess={"height": "x"})
    model_with("m-bad-backbone", backbone={"nme": "x"})
    (t / "m-list").mkdir()
    (t / "m-list" / "model.json").write_text("[]")
    for name, content in [("c-dict", {"a": 1}), ("c-ints", [1, 2]), ("c-noid", [{"name": "x"}])]:
        (t / name).mkdir()
        (t / name / "card_metadata.json").write_text(json.dumps(content))
    shutil.copytree(t / "cat", t / "c-badindex")
    (t / "c-badindex" / "class_index.json").write_text(json.dumps({"x": 1}))
    (t / "ptcg" / "sets").mkdir(parents=True)
    (t / "ptcg" / "sets" / "en.json").write_text(json.dumps({"a": 1}))
    (t / "ptcg" / "cards" / "en").mkdir(parents=True)
    return t, next((t / "cat" / "images").iterdir())


CASES = {  # each a command line (no spaces in these paths): T/ is the workspace, IMG a scan
    "search: k -1": "index search IMG --model T/model --db T/db --k -1",
    "search: a folder as image": "index search T/adir --model T/model --db T/db",
    "search: a file as model": "index search IMG --model T/afile --db T/db",
    "search: a file as DB": "index search IMG --model T/model --db T/afile",
    "model.json without weights": "index search IMG --model T/m-no-weights --db T/db",
    "model.json a list": "index search IMG --model T/m-list --db T/db",
    "model.json bad preprocess": "index search IMG --model T/m-bad-pre --db T/db",
    "model.json bad backbone": "index search IMG --model T/m-bad-backbone --db T/db",
    "metadata a dict": "index build --model T/model --catalog T/c-dict --out T/o1",
    "metadata of ints": "index build --model T/model --catalog T/c-ints --out T/o1",
    "metadata without ids": "index build --model T/model --catalog T/c-noid --out T/o1",
    "class index of another shape": "index build --model T/model --catalog T/c-badindex --out T/o1",
    "build: --out a file": "index build --model T/model --catalog T/cat --out T/afile",
    "build: batch 0": "index build --model T/model --catalog T/cat --out T/o2 --batch-size 0",
    "build: workers -1": "index build --model T/model --catalog T/cat --out T/o2 --workers -1",
    "calibrate: cards -5": "index calibrate --model T/model --db T/db --cards -5",
    "recognize: --show a file": "recognize IMG --model T/model --db T/db --show T/afile",
    "recognize: --json a folder": "recognize IMG --model T/model --db T/db --json T/adir",
    "recognize: text as image": "recognize T/afile --model T/model --db T/db",
    "data: --out a file": "data embedding --catalog T/cat --out T/afile",
    "data: 0 views": "data embedding --catalog T/cat --out T/o3 --set train_views=0",
    "data: unknown field": "data embedding --catalog T/cat --out T/o3 --set nonsense=1",
    "data: YAML a list": "data embedding --catalog T/cat --out T/o3 --config T/list.yaml",
    "preview: --out a folder": "synth preview --catalog T/cat --out T/adir",
    "from-folder: a file": "catalog from-folder T/afile",
    "from-folder: an empty folder": "catalog from-folder T/adir",
    "pokemontcg: sets a dict": "catalog import-pokemontcg --data-dir T/ptcg --out T/o4",
    "pokemontcg: a file": "catalog import-pokemontcg --data-dir T/afile --out T/o4",
    "download: a file": "catalog download T/afile",
    "s3 without bucket": "cloud sync up T/cat s3://",
    "s3 unreachable": "cloud sync up T/cat s3://b/x --endpoint-url http://127.0.0.1:9",
    "teacher: eval_every 0": "train teacher --preset tiny --data T/cat --out T/o5 --set eval_every=0",
    "teacher: data a file": "train teacher --preset tiny --data T/afile --out T/o5",
    "distill: teacher a file": "distill --preset tiny --teacher T/afile --data T/cat --out T/o6",
    "eval retrieval: queries a file": "eval retrieval --model T/model --gallery T/cat --queries T/afile",
    "eval photos: not a realdata folder": "eval photos --model T/model --realdata T/adir --out T/o7",
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_clear_error(ws, case, capsys, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    t, img = ws
    args = [str(img) if a == "IMG" else a.replace("T/", f"{t}/") for a in CASES[case].split()]
    rc = main(args)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert rc in (1, 2), err
    if rc == 1:
        errors = [line for line in err.splitlines() if line.startswith("error:")]
        assert len(errors) == 1, err


def test_an_image_error_inside_a_dataloader_worker_is_one_line(ws, capsys):
    t, _ = ws
    cat = shutil.copytree(t / "cat", t / "cat-corrupt")
    victim = sorted((cat / "images").iterdir())[0]
    victim.write_bytes(b"garbage, not a PNG")
    rc = main(
        [
            "index",
            "build",
            "--model",
            str(t / "model"),
            "--catalog",
            str(cat),
            "--out",
            str(t / "o8"),
            "--workers",
            "2",
        ]
    )
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert rc == 1 and len(errors) == 1 and victim.name in errors[0] and "Traceback" not in err
    assert not (t / "o8").exists()


def test_show_never_overwrites_one_picture_with_another(ws, tmp_path):
    t, img = ws
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        shutil.copy(img, tmp_path / d / "photo.png")
    show = tmp_path / "show"
    args = ["recognize", str(tmp_path / "a" / "photo.png"), str(tmp_path / "b" / "photo.png")]
    assert main([*args, "--model", str(t / "model"), "--db", str(t / "db"), "--show", str(show)]) == 0
    assert sorted(p.name for p in show.iterdir()) == [".cardid", "photo-2.png", "photo.png"]  # + its marker


@pytest.mark.parametrize("card_id", [".", "..", ".hidden", "a/b", "../x"])
def test_odd_card_ids_stay_one_file_inside_their_folder(card_id, tmp_path):
    from cardid.catalog.ids import card_file_stem, card_id_from_stem
    from cardid.io import inside

    stem = card_file_stem(card_id)
    assert card_id_from_stem(stem) == card_id
    assert not stem.startswith(".") and "/" not in stem
    assert inside(tmp_path, stem).parent == tmp_path


def test_the_cli_starts_without_torch():
    import subprocess
    import sys

    code = "import sys, cardid.cli; print('torch' in sys.modules)"
    assert (
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"
    )


def test_unicode_and_spaces_in_names_go_end_to_end(ws, tmp_path, capsys):
    t, _ = ws
    scans = tmp_path / "my scans ü"
    scans.mkdir()
    ids = ["Pikachu ex-1", "Flabébé-2", "x?y-3"]
    from cardid.catalog.ids import card_file_stem

    for i, cid in enumerate(ids):
        src = sorted((t / "cat" / "images").iterdir())[i]
        shutil.copy(src, scans / f"{card_file_stem(cid)}.png")
    out = tmp_path / "cat ü"
    assert main(["catalog", "from-folder", str(scans), "--out", str(out)]) == 0
    assert sorted(json.loads((out / "class_index.json").read_text())["class_to_idx"]) == sorted(ids)
    db = tmp_path / "db é"
    assert (
        main(
            [
                "index",
                "build",
                "--model",
                str(t / "model"),
                "--catalog",
                str(out),
                "--out",
                str(db),
                "--calibrate-cards",
                "3",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert (
        main(
            [
                "index",
                "search",
                str(scans / f"{card_file_stem(ids[1])}.png"),
                "--model",
                str(t / "model"),
                "--db",
                str(db),
            ]
        )
        == 0
    )
    assert "Flabébé-2" in capsys.readouterr().out
