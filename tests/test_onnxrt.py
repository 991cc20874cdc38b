"""cardid.onnxrt: every ONNX model opened one way, its pool threads not spinning between runs."""

import pytest
from tests.conftest import constant_obb_onnx

from cardid.detect.onnx_obb import OnnxObbDetector
from cardid.errors import CardIDError
from cardid.onnxrt import SPINNING, open_session


def test_sessions_do_not_spin_and_a_bad_file_is_one_clear_error(tmp_path):
    path = tmp_path / "finder.onnx"
    constant_obb_onnx(path, [((80, 80, 60, 90, 0.3), 0.9)])
    for session in (open_session(path), OnnxObbDetector(path).session):
        assert session.get_session_options().get_session_config_entry(SPINNING) == "0"
    (tmp_path / "bad.onnx").write_bytes(b"not a model")
    with pytest.raises(CardIDError, match="not a readable ONNX detector: .*bad.onnx"):
        OnnxObbDetector(tmp_path / "bad.onnx")
