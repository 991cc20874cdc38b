"""No confident name without a threshold; no threshold that accepts or rejects everything."""

import json

import numpy as np
import pytest
from PIL import Image
from tests.conftest import build_index

from cardid.cli import main


@pytest.fixture
def built(tmp_path, synth_catalog):
    return build_index(tmp_path, synth_catalog.root, "--no-calibrate")


def _errors(capsys):
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return [line for line in err.splitlines() if line.startswith("error:")]


def test_an_uncalibrated_db_names_nothing_and_says_so(tmp_path, built, capsys):
    model, db = built
    Image.fromarray(np.zeros((88, 63, 3), np.uint8)).save(tmp_path / "black.png")
    capsys.readouterr()
    assert main(["recognize", str(tmp_path / "black.png"), "--model", str(model), "--db", str(db)]) == 0
    cap = capsys.readouterr()
    rec = json.loads(cap.out.strip().splitlines()[0])
    assert rec["calibrated"] is False
    assert [c["decision"] for c in rec["cards"]] == ["unknown"] and rec["cards"][0]["top"]
    assert "not calibrated" in cap.err


@pytest.mark.parametrize("p", ["2", "1", "0", "-1"])
def test_calibrate_refuses_a_target_precision_outside_0_1(built, capsys, p):
    model, db = built
    before = (db / "db.json").read_bytes()
    rc = main(
        [
            "index",
            "calibrate",
            "--model",
            str(model),
            "--db",
            str(db),
            "--target-precision",
            p,
            "--cards",
            "4",
        ]
    )
    errors = _errors(capsys)
    assert rc == 1 and len(errors) == 1 and "between 0 and 1" in errors[0]
    assert (db / "db.json").read_bytes() == before


def test_index_build_calibrates_by_default(tmp_path, synth_catalog):
    build_index(tmp_path, synth_catalog.root, "--calibrate-cards", "6")
    meta = json.loads((tmp_path / "db" / "db.json").read_text())
    assert set(meta["calibration"]) == {"embedding", "fused"}
