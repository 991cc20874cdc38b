"""A detector ``.pt`` is a pickle: it is opened only when ``train detector`` recorded its hash."""

import json
import os
import pickle

import pytest
from tests.conftest import build_index

from cardid.cli import main
from cardid.detect.yolo import check_weights
from cardid.errors import CardIDError
from cardid.io import sha256_file


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _evil_pt(path, marker):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps({"model": _Evil(marker)}))
    return path


def test_a_crafted_pt_never_runs(tmp_path, capsys, tiny_db):
    marker = tmp_path / "pwned"
    pt = _evil_pt(tmp_path / "det" / "best.pt", marker)
    photo = tmp_path / "p.png"
    photo.write_bytes(b"")  # never reached
    model, db = tiny_db
    rc = main(["recognize", str(photo), "--detector", str(pt), "--model", str(model), "--db", str(db)])
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert rc == 1 and len(errors) == 1 and "pickle" in errors[0], errors
    with pytest.raises(CardIDError, match="pickle and can run code"):
        check_weights(pt)
    assert not marker.exists()


@pytest.fixture
def tiny_db(tmp_path, synth_catalog):
    return build_index(tmp_path, synth_catalog.root)


def test_a_pt_whose_recorded_hash_differs_is_refused(tmp_path):
    pt = _evil_pt(tmp_path / "det" / "best.pt", tmp_path / "pwned")
    (pt.parent / "detector.json").write_text(json.dumps({"weights": str(pt), "weights_sha256": "0" * 64}))
    with pytest.raises(CardIDError, match="differs"):
        check_weights(pt)
    (pt.parent / "detector.json").write_text(
        json.dumps({"weights": str(pt), "weights_sha256": sha256_file(pt)})
    )
    assert check_weights(pt) == pt  # recorded by training: trusted as the user's own file
    assert not (tmp_path / "pwned").exists()  # checking never unpickles


def test_onnx_and_missing_files(tmp_path):
    (tmp_path / "d.onnx").write_bytes(b"x")
    assert check_weights(tmp_path / "d.onnx").name == "d.onnx"
    with pytest.raises(CardIDError, match="not found"):
        check_weights(tmp_path / "none.pt")
    (tmp_path / "d.pkl").write_bytes(b"x")
    with pytest.raises(CardIDError, match=".pt or .onnx"):
        check_weights(tmp_path / "d.pkl")
