"""A killed or broken run never looks finished, never silently starts over, never divides by zero."""

import json

import pytest
import torch
from tests.conftest import make_tiny_model

from cardid.cli import main
from cardid.config import load_config
from cardid.embed import load_embedder
from cardid.errors import CardIDError
from cardid.models.artifact import MODEL_JSON, mark_complete
from cardid.train.checkpoint import checkpoint_path, load_latest, save_checkpoint
from cardid.train.configs import TeacherConfig


def test_the_best_model_of_an_unfinished_run_is_not_loadable(tmp_path):
    path = make_tiny_model(tmp_path / "m")
    meta = json.loads((path / MODEL_JSON).read_text())
    meta["complete"] = False  # what a run killed after its first evaluation leaves
    meta["metrics"] = {"step": 40}
    (path / MODEL_JSON).write_text(json.dumps(meta))
    with pytest.raises(CardIDError, match="did not finish.*step 40"):
        load_embedder(path)
    mark_complete(path)  # what the run does when it ends
    assert load_embedder(path).dim == 32


def test_unreadable_checkpoints_stop_the_run_unless_asked(tmp_path):
    fp = {"backbone": "x", "classes": 3}
    save_checkpoint(tmp_path, 10, {"step": 10, "fingerprint": fp})
    save_checkpoint(tmp_path, 20, {"step": 20, "fingerprint": fp})
    checkpoint_path(tmp_path, 20).write_bytes(b"torn")
    assert load_latest(tmp_path, fp)["step"] == 10  # one torn file: the previous one resumes
    checkpoint_path(tmp_path, 10).write_bytes(b"")
    with pytest.raises(CardIDError, match="all 2 checkpoint.*unreadable.*restart_if_unreadable"):
        load_latest(tmp_path, fp)
    assert load_latest(tmp_path, fp, restart_if_unreadable=True) is None
    torch.save([1, 2], checkpoint_path(tmp_path, 30))  # readable, but not a training state
    with pytest.raises(CardIDError, match="all 3"):
        load_latest(tmp_path, fp)


@pytest.mark.parametrize(
    "override,msg",
    [
        ("eval_every=0", "eval_every"),
        ("checkpoint_every=0", "checkpoint_every"),
        ("batch_size=0", "batch_size"),
        ("device=banana", "device"),
        ("log_every=-1", "log_every"),
    ],
)
def test_nonsense_settings_are_refused_up_front(override, msg):
    with pytest.raises(CardIDError, match=msg):
        load_config(TeacherConfig, overrides=[override])


def test_device_cuda_without_a_gpu_is_one_clear_error(tmp_path, capsys, synth_catalog):
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible here")
    rc = main(
        [
            "train",
            "teacher",
            "--preset",
            "tiny",
            "--data",
            str(synth_catalog.root),
            "--out",
            str(tmp_path / "t"),
            "--device",
            "cuda",
        ]
    )
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert rc == 1 and len(errors) == 1 and "no CUDA GPU" in errors[0] and "Traceback" not in err


def test_identical_tensors_give_one_identity_whatever_the_file_header(tmp_path):
    from safetensors.torch import load_file, save_file

    from cardid.io import sha256_file

    path = make_tiny_model(tmp_path / "m")
    before = load_embedder(path).identity
    meta = json.loads((path / MODEL_JSON).read_text())
    weights = path / meta["weights"]
    state = load_file(str(weights))
    save_file(state, str(weights), metadata={"name": "teacher", "format": meta["format"], "x": "1"})
    meta["weights_sha256"] = sha256_file(weights)  # another file, the same tensors
    (path / MODEL_JSON).write_text(json.dumps(meta))
    assert load_embedder(path).identity == before
    state[sorted(state)[0]] = state[sorted(state)[0]] + 1e-3  # other tensors: another identity
    save_file(state, str(weights))
    meta["weights_sha256"] = sha256_file(weights)
    from cardid.models.artifact import tensors_sha256

    meta["tensors_sha256"] = tensors_sha256(state)
    (path / MODEL_JSON).write_text(json.dumps(meta))
    assert load_embedder(path).identity != before
