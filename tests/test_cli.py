import json

import pytest
from tests.conftest import realdata

from cardid.cli import main


def test_synth_data_preview_end_to_end(tmp_path, capsys):
    assert main(["synth", "cards", "--n", "4", "--out", str(tmp_path / "cat"), "--height", "128"]) == 0
    assert (
        main(
            [
                "data",
                "embedding",
                "--catalog",
                str(tmp_path / "cat"),
                "--out",
                str(tmp_path / "ds"),
                "--train-views",
                "1",
                "--val-views",
                "1",
                "--workers",
                "1",
                "--set",
                "photo.p_finger=0",
            ]
        )
        == 0
    )
    cfg = (tmp_path / "ds" / "config.yaml").read_text()
    assert "p_finger: 0" in cfg and "train_views: 1" in cfg
    assert (
        main(
            [
                "synth",
                "preview",
                "--catalog",
                str(tmp_path / "cat"),
                "--out",
                str(tmp_path / "s.png"),
                "--cards",
                "2",
                "--preset",
                "light",
            ]
        )
        == 0
    )
    assert (tmp_path / "s.png").stat().st_size > 10_000


def test_catalog_from_folder_and_dedupe(tmp_path, capsys):
    assert main(["synth", "cards", "--n", "6", "--out", str(tmp_path / "cat"), "--height", "128"]) == 0
    assert (
        main(["catalog", "from-folder", str(tmp_path / "cat" / "images"), "--out", str(tmp_path / "c2")]) == 0
    )
    assert json.loads((tmp_path / "c2" / "class_index.json").read_text())["num_classes"] == 6
    assert main(["catalog", "dedupe", str(tmp_path / "c2")]) == 0
    assert (tmp_path / "c2" / "duplicates.json").is_file()


@pytest.mark.parametrize(
    "argv,message",
    [
        (["catalog", "from-folder", "/nonexistent/folder"], "scan folder not found: /nonexistent/folder"),
        (["data", "embedding", "--catalog", "/nope", "--out", "x"], "catalog directory not found: /nope"),
        (["synth", "preview", "--catalog", "/nope", "--preset", "wild"], "unknown photo preset 'wild'"),
    ],
)
def test_bad_input_is_one_clear_line_and_exit_1(argv, message, capsys):
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert message in " ".join(err.split()) and "Traceback" not in err


def test_corrupt_metadata_names_the_file(tmp_path, capsys):
    (tmp_path / "card_metadata.json").write_text("[{oops")
    assert main(["catalog", "dedupe", str(tmp_path)]) == 1
    assert "card_metadata.json" in capsys.readouterr().err


def test_usage_errors_and_version(capsys):
    assert main(["synth", "cards", "--n", "0", "--out", "x"]) == 2
    assert main(["--version"]) == 0
    assert "cardid" in capsys.readouterr().out


@pytest.mark.realdata
def test_import_real_pokemontcg_set(tmp_path):
    assert (
        main(
            [
                "catalog",
                "import-pokemontcg",
                "--data-dir",
                str(realdata("pokemon-tcg-data")),
                "--out",
                str(tmp_path / "c"),
                "--sets",
                "xy12",
            ]
        )
        == 0
    )
    meta = json.loads((tmp_path / "c" / "card_metadata.json").read_text())
    assert {r["set_id"] for r in meta} == {"xy12"}


def test_a_training_command_on_the_runtime_install_says_which_extra_it_needs(
    tmp_path, synth_catalog, monkeypatch, capsys
):
    import sys

    for name in [m for m in sys.modules if m == "torch" or m.startswith("torch.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "torch", None)  # as if not installed: `import torch` fails
    argv = ["train", "teacher", "--preset", "tiny", "--data", str(synth_catalog.root)]
    assert main([*argv, "--out", str(tmp_path / "t")]) == 1
    err = capsys.readouterr().err
    assert "needs torch" in err and "pip install 'cardid[train]'" in err and "Traceback" not in err
