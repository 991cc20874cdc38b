"""A spot interruption, simulated end to end: the training entry point runs with SageMaker's
environment, its checkpoints are synced to S3 as SageMaker does, the "instance" is killed
mid-phase, a fresh one restores the checkpoints from S3 and resumes; the result equals an
uninterrupted run."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

pytest.importorskip("boto3")
pytest.importorskip("moto")

from tests.cloud.test_s3 import endpoint, s3  # noqa: F401

from cardid.cloud.s3 import sync_down, sync_up
from cardid.synth.cards import synth_cards
from cardid.train.checkpoint import list_checkpoints

HPS = {"phase1.steps": 8, "phase2.steps": 16, "checkpoint_every": 4, "eval_every": 1000, "batch_size": 16}


def _instance(root, catalog):
    """One simulated training instance: /opt/ml-like folders and SageMaker's variables."""
    (root / "model").mkdir(parents=True)
    (root / "checkpoints").mkdir()
    env = {
        **os.environ,
        "SM_MODEL_DIR": str(root / "model"),
        "SM_CHANNEL_TRAIN": str(catalog.root),
        "SM_HPS": json.dumps(HPS),
        "SM_CURRENT_HOST": "algo-1",
        "CARDID_CHECKPOINT_DIR": str(root / "checkpoints"),
        "OMP_NUM_THREADS": "1",
    }
    cmd = [sys.executable, "-m", "cardid.cli", "train", "teacher", "--preset", "tiny"]
    return lambda: subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


@pytest.mark.slow
def test_spot_interruption_resumes_from_s3_to_the_same_result(tmp_path, s3):  # noqa: F811
    c, bucket = s3
    cat = synth_cards(tmp_path / "cat", n=12, seed=4, height=128, reprint_fraction=0)
    straight = _instance(tmp_path / "a", cat)()
    out, _ = straight.communicate(timeout=300)
    assert straight.returncode == 0, out.decode()[-2000:]

    uri = f"s3://{bucket}/artifacts/checkpoints/teacher/job-1"
    first = _instance(tmp_path / "b", cat)()
    deadline = time.time() + 120
    while time.time() < deadline and not any(
        4 <= s < 24 for s, _ in list_checkpoints(tmp_path / "b" / "checkpoints")
    ):
        time.sleep(0.01)
    sync_up(tmp_path / "b" / "checkpoints", uri, c)  # SageMaker uploads /opt/ml/checkpoints as files appear
    first.send_signal(signal.SIGKILL)  # the spot instance is reclaimed
    first.wait()
    assert not (tmp_path / "b" / "model" / "metrics.json").exists(), "the run finished before it was killed"

    start = _instance(tmp_path / "c", cat)  # a new instance, whose checkpoint folder SageMaker
    sync_down(uri, tmp_path / "c" / "checkpoints", c)  # restores from S3 before the job starts
    resumed = start()
    out, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, out.decode()[-2000:]
    assert b"resuming from" in out
    a = torch.load(list_checkpoints(tmp_path / "a" / "checkpoints")[-1][1], weights_only=True)
    b = torch.load(list_checkpoints(tmp_path / "c" / "checkpoints")[-1][1], weights_only=True)
    assert a["step"] == b["step"] == 24
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), k
    assert (tmp_path / "c" / "model" / "teacher.safetensors").is_file()
