"""The dependency lock: made from pyproject.toml, installed exactly, one OpenCV."""

import importlib.util
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("lock_tool", ROOT / "tools" / "lock.py")
lock = importlib.util.module_from_spec(spec)
spec.loader.exec_module(lock)


def test_the_lock_is_made_from_this_pyproject():
    assert lock.check() is None  # else: `make lock`, and commit requirements-lock.txt
    pins = lock.locked_versions()
    assert "opencv-python" not in pins and "opencv-python-headless" in pins  # one cv2, headless
    assert {"torch", "ultralytics", "pi-heif", "tesserocr", "setuptools"} <= set(pins)


def test_a_dependency_change_makes_the_lock_stale_and_a_comment_does_not(tmp_path):
    shutil.copy(ROOT / "requirements-lock.txt", tmp_path / "requirements-lock.txt")
    py = tmp_path / "pyproject.toml"
    text = (ROOT / "pyproject.toml").read_text()
    py.write_text(text + "\n# a comment\n[tool.other]\nx = 1\n")
    assert lock.check(tmp_path / "requirements-lock.txt", py) is None
    py.write_text(text.replace('"numpy>=2.0",', '"numpy>=2.0",\n    "requests>=2",'))
    msg = lock.check(tmp_path / "requirements-lock.txt", py)
    assert msg and "out of date with pyproject.toml" in msg and "make lock" in msg and "\n" not in msg
    lock.stamp(tmp_path / "requirements-lock.txt", py)  # what `make lock` does after pip-compile
    assert lock.check(tmp_path / "requirements-lock.txt", py) is None
    assert lock.check(tmp_path / "missing.txt", py).startswith("missing.txt is missing")


def test_exactly_one_opencv_provides_cv2():
    from importlib.metadata import packages_distributions

    found = [d for d in lock.CV2_DISTS if d in lock.installed()]
    assert found == ["opencv-python-headless"], found
    assert [lock._norm(d) for d in packages_distributions()["cv2"]] == ["opencv-python-headless"]


@pytest.mark.skipif(Path(sys.prefix).resolve() != (ROOT / ".venv").resolve(), reason="not the lock's .venv")
def test_the_venv_holds_exactly_the_locked_versions():
    assert lock.problems() == []
