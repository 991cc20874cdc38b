from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from cardid.catalog import Catalog
from cardid.synth.cards import synth_cards

#: what an in-process test client says it is: a loopback address (the server refuses other hosts)
LOCAL = "http://127.0.0.1"

if os.environ.get("PYTEST_XDIST_WORKER"):
    # one process per core already: more intra-op threads per process only oversubscribe the CPU
    import cv2
    import torch

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    os.environ.setdefault("OMP_NUM_THREADS", "1")

# what `cardid serve` keeps by default (the collection) goes to a throwaway data dir, not the user's
os.environ["XDG_DATA_HOME"] = tempfile.mkdtemp(prefix="cardid-test-data-")

REALDATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "realdata"
REALDATA = REALDATA.resolve()


def realdata(*parts: str) -> Path:
    """Path under ../shared/realdata, or skip the test when it is absent (users' machines)."""
    p = REALDATA.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"real data not available: {p}")
    return p


@pytest.fixture(scope="session")
def synth_catalog(tmp_path_factory) -> Catalog:
    """12 small synthetic cards (with reprints); read-only for tests."""
    return synth_cards(
        tmp_path_factory.mktemp("synth") / "catalog", n=12, seed=3, height=160, reprint_fraction=0.3
    )


def make_tiny_model(path: Path, seed: int = 0) -> Path:
    """A random tiny DINOv3 embedding model saved as a real model directory (32-d, 64 px)."""
    import torch

    from cardid.models.artifact import save_model_dir
    from cardid.models.backbones import create_backbone
    from cardid.models.model import EmbeddingModel
    from cardid.preprocess import get_preset

    torch.manual_seed(seed)
    m = EmbeddingModel(create_backbone("dinov3-tiny"), 32).eval()
    save_model_dir(m, path, name="teacher", kind="teacher", preprocess=get_preset("tiny64"), pooling="cls")
    return path


def build_index(root: Path, catalog: Path, *extra: str) -> tuple[Path, Path]:
    """A tiny model and a DB of ``catalog`` built with it through the CLI: ``(model, db)``."""
    from cardid.cli import main

    model = make_tiny_model(root / "model")
    db = root / "db"
    args = ["index", "build", "--model", str(model), "--catalog", str(catalog), "--out", str(db), *extra]
    assert main(args) == 0
    return model, db


def torchrun(nproc: int, port: int, *args: str, timeout: int = 300):
    """Run ``python -m cardid.cli ARGS`` under torchrun with ``nproc`` CPU processes (gloo)."""
    import subprocess
    import sys

    exe = Path(sys.executable).with_name("torchrun")
    return subprocess.run(
        [str(exe), "--nproc_per_node", str(nproc), "--master_port", str(port), "-m", "cardid.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


def constant_obb_onnx(path, rows, anchors: int = 32, size: int = 160):
    """An ONNX 'detector' whose output is ``rows`` whatever the photo, with ultralytics' metadata."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    out = np.zeros((1, 6, anchors), np.float32)
    for i, (box, score) in enumerate(rows):
        out[0, :4, i], out[0, 4, i], out[0, 5, i] = box[:4], score, box[4]
    graph = helper.make_graph(
        [helper.make_node("Constant", [], ["output0"], value=numpy_helper.from_array(out))],
        "obb",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 6, anchors])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    meta = {"task": "obb", "imgsz": f"[{size}, {size}]", "names": "{0: 'card'}", "stride": "32", "batch": "1"}
    meta |= {"end2end": "False", "channels": "3"}
    for k, v in meta.items():
        model.metadata_props.add(key=k, value=v)
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="session")
def served_index(tmp_path_factory, synth_catalog):
    """A tiny model and a calibrated DB of ``synth_catalog``: (model, db), shared read-only by the
    service's tests (the page, the collection routes, the hostile probes)."""
    return build_index(tmp_path_factory.mktemp("served"), synth_catalog.root, "--calibrate-cards", "6")
