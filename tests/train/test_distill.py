import pytest
import torch
from tests.conftest import torchrun

from cardid.config import load_config
from cardid.errors import CardIDError
from cardid.eval.retrieval import CollapseError
from cardid.models.artifact import load_model_dir
from cardid.models.students import create_student
from cardid.synth.cards import synth_cards
from cardid.train import distill as distill_mod
from cardid.train.checkpoint import list_checkpoints
from cardid.train.configs import DISTILL_PRESETS, DistillConfig, TeacherConfig, teacher_preset
from cardid.train.distill import distill
from cardid.train.losses import distill_loss
from cardid.train.teacher import train_teacher


def _teacher(root, *overrides):
    cat = synth_cards(root / "cat", n=20, seed=11, height=160, reprint_fraction=0.1)
    cfg = load_config(
        TeacherConfig,
        defaults=teacher_preset("tiny"),
        overrides=list(overrides),
        data={"train": str(cat.root)},
        out_dir=str(root / "teacher"),
    )
    res = train_teacher(cfg)
    return root / "teacher", cat, res["best"]["recall@1"]


@pytest.fixture(scope="module")
def teacher_run(tmp_path_factory):
    """A tiny teacher trained to convergence on 20 synthetic cards (for what students reach)."""
    return _teacher(tmp_path_factory.mktemp("distill"))


@pytest.fixture(scope="module")
def quick_teacher(tmp_path_factory):
    """A few steps of the same teacher: enough for what distillation does, not for how well."""
    return _teacher(tmp_path_factory.mktemp("quick"), "phase1.steps=4", "phase2.steps=4", "eval_every=8")


def dcfg(tmp_path, teacher_run, *overrides):
    teacher, cat, _ = teacher_run
    return load_config(
        DistillConfig,
        defaults=DISTILL_PRESETS["tiny"],
        overrides=[f"teacher={teacher}", f"data.train={cat.root}", f"out_dir={tmp_path / 'run'}", *overrides],
    )


@pytest.mark.slow
def test_two_tiny_students_reach_80_percent_of_the_teacher(tmp_path, teacher_run):
    res = distill(dcfg(tmp_path, teacher_run, "students=[tiny-cnn,tiny-vit]"))
    t_r1 = res["teacher_val_recall@1"]
    assert t_r1 == pytest.approx(teacher_run[2])
    for name in ("tiny-cnn", "tiny-vit"):
        assert res["best"][name]["recall@1"] >= 0.8 * t_r1, (name, res["best"][name]["recall@1"], t_r1)
        _model, meta = load_model_dir(tmp_path / "run" / "students" / name)
        assert meta["kind"] == "student" and meta["embed_dim"] == 64 and meta["teacher"]["embed_dim"] == 64
        assert meta["preprocess"]["height"] == 64 and "cross/recall@1" in meta["metrics"]["val"]
    assert (tmp_path / "run" / "curves.png").is_file()


def test_the_quick_teachers_once_per_batch_for_all_students(tmp_path, quick_teacher, monkeypatch):
    calls = []
    real = distill_mod._teacher_embed
    monkeypatch.setattr(
        distill_mod, "_teacher_embed", lambda t, x, amp: calls.append(len(x)) or real(t, x, amp)
    )
    distill(dcfg(tmp_path / "a", quick_teacher, "students=[tiny-cnn,tiny-vit]", "steps=6", "eval_every=100"))
    assert len(calls) == 6 and calls == [32] * 6
    calls.clear()
    distill(
        dcfg(
            tmp_path / "b",
            quick_teacher,
            "students=[tiny-cnn]",
            "steps=6",
            "eval_every=100",
            "teacher_cache_views=2",
        )
    )
    assert sum(calls) == 20 * 2  # only the cache: 20 cards × 2 views, embedded once, no per-step teacher


def test_kept_views_are_the_rendered_views_and_train_the_same_student(tmp_path, quick_teacher, caplog):
    """With a teacher cache, the students' inputs are kept from the cache's own pass instead of being
    rendered again each time a view is drawn: the same tensors, so bit for bit the same student."""
    from cardid.data.datasets import MultiContract
    from cardid.preprocess import PRESETS
    from cardid.synth.settings import PhotoSimConfig
    from cardid.train.data import Indexed, KeptViews, cache_indices, load_training_data

    _, cat, _ = quick_teacher
    data = load_training_data(cat.root, PRESETS["tiny64"], PhotoSimConfig(), seed=0)
    idx = cache_indices(data, 2)[:6]
    contracts = {"a": PRESETS["tiny64"], "b": PRESETS["portrait128"]}
    rendered = Indexed(MultiContract(data.train, contracts), idx)
    resized = Indexed(MultiContract(data.train, {k: v.resize_image for k, v in contracts.items()}), idx)
    items = [resized[i] for i in range(len(idx))]
    kept = KeptViews(
        {k: torch.stack([v[k] for v, _, _ in items]) for k in contracts},
        torch.tensor([y for _, y, _ in items]),
        contracts,
    )
    for i in range(len(idx)):
        (want, y, j), (got, y2, j2) = rendered[i], kept[i]
        assert (y, j) == (y2, j2) and all(torch.equal(want[k], got[k]) for k in contracts)
    with pytest.raises(CardIDError, match="one uint8 tensor per contract"):
        KeptViews({"a": kept.kept["a"]}, kept.labels, contracts)

    runs = {}
    for gib in (4.0, 0.0):
        out = tmp_path / str(gib)
        over = [
            "students=[tiny-cnn]",
            "steps=4",
            "eval_every=4",
            "teacher_cache_views=2",
            f"keep_views_gib={gib}",
        ]
        caplog.clear()
        with caplog.at_level("INFO", logger="cardid.train.distill"):
            distill(dcfg(out, quick_teacher, *over))
        assert ("students' inputs kept" in caplog.text) == (gib > 0)
        runs[gib] = load_model_dir(out / "run" / "students" / "tiny-cnn")[0].state_dict()
    assert all(torch.equal(runs[4.0][k], v) for k, v in runs[0.0].items())


def test_channels_last_trains_the_same_model(tmp_path, quick_teacher):
    """NHWC is a memory layout, not a model: the same steps give the same student (to float error),
    and it is saved in the ordinary layout."""
    runs = {}
    for cl in (True, False):
        out = tmp_path / str(cl)
        distill(
            dcfg(out, quick_teacher, "students=[tiny-cnn]", "steps=3", "eval_every=3", f"channels_last={cl}")
        )
        model, _ = load_model_dir(out / "run" / "students" / "tiny-cnn")
        runs[cl] = model.state_dict()
    convs = [k for k, v in runs[True].items() if v.ndim == 4]
    assert convs and all(runs[True][k].is_contiguous() for k in convs)
    for k, v in runs[False].items():
        torch.testing.assert_close(runs[True][k], v, rtol=1e-3, atol=1e-4, msg=k)


def test_mse_only_collapse_is_caught(tmp_path, quick_teacher, monkeypatch):
    def blind_student(name, dim, pretrained=True, weights=None):
        model, pre = create_student(name, dim, False)
        model.backbone.forward = lambda x: torch.zeros(x.shape[0], model.backbone.out_dim, device=x.device)
        return model, pre  # sees nothing: every card gets the same embedding, MSE stays small

    monkeypatch.setattr(distill_mod, "create_student", blind_student)
    with pytest.raises(CollapseError, match="student 'tiny-cnn'.*mean cosine"):
        distill(
            dcfg(
                tmp_path,
                quick_teacher,
                "loss.mse=1",
                "loss.cosine=0",
                "loss.relational=0",
                "steps=4",
                "eval_every=4",
            )
        )
    assert not (tmp_path / "run" / "students" / "tiny-cnn").exists()


@pytest.mark.slow
def test_resume_equals_uninterrupted(tmp_path, teacher_run, monkeypatch):
    over = ["steps=12", "checkpoint_every=4", "eval_every=100"]
    distill(dcfg(tmp_path / "a", teacher_run, *over))
    real = distill_mod.save_checkpoint

    def crash(directory, step, state, keep=2):
        path = real(directory, step, state, keep)
        if step == 8:
            raise KeyboardInterrupt
        return path

    monkeypatch.setattr(distill_mod, "save_checkpoint", crash)
    with pytest.raises(KeyboardInterrupt):
        distill(dcfg(tmp_path / "b", teacher_run, *over))
    monkeypatch.setattr(distill_mod, "save_checkpoint", real)
    distill(dcfg(tmp_path / "b", teacher_run, *over))
    a = torch.load(list_checkpoints(tmp_path / "a" / "run" / "checkpoints")[-1][1], weights_only=True)
    b = torch.load(list_checkpoints(tmp_path / "b" / "run" / "checkpoints")[-1][1], weights_only=True)
    assert a["step"] == b["step"] == 12
    for k, v in a["students"].items():
        assert torch.equal(v, b["students"][k]), k


def test_losses():
    t = torch.nn.functional.normalize(torch.randn(8, 16), dim=1)
    w = DistillConfig().loss
    zero, parts = distill_loss(t, t, w)
    assert zero.item() == pytest.approx(0, abs=1e-6) and set(parts) == {"cosine", "relational"}
    s = torch.nn.functional.normalize(torch.randn(8, 16), dim=1)
    _total, parts = distill_loss(s, t, w.model_copy(update={"mse": 1.0}))
    assert parts["mse"] < 0.2 < parts["cosine"]  # MSE on unit vectors is tiny: why it hid a collapse


def test_bad_inputs(tmp_path, quick_teacher, monkeypatch):
    with pytest.raises(CardIDError, match="model.json"):
        distill(dcfg(tmp_path, quick_teacher, f"teacher={tmp_path}"))
    with pytest.raises(CardIDError, match="unknown student preset 'resnet'"):
        distill(dcfg(tmp_path, quick_teacher, "students=[resnet]"))
    monkeypatch.setattr(
        distill_mod, "create_student", lambda n, d, p=True, w=None: create_student(n, d + 1, False)
    )
    with pytest.raises(CardIDError, match="65 dimensions, the teacher in 64"):
        distill(dcfg(tmp_path, quick_teacher))
    assert not (tmp_path / "run" / "students").exists()


def test_student_weights_from_a_local_file(tmp_path):
    from safetensors.torch import save_file

    torch.manual_seed(1)
    ref, _ = create_student("tiny-cnn", 32, pretrained=False)
    state = {k: v.contiguous() for k, v in ref.backbone.model.state_dict().items()}
    save_file(state, str(tmp_path / "w.safetensors"))
    torch.manual_seed(2)
    loaded, _ = create_student("tiny-cnn", 32, pretrained=True, weights=str(tmp_path / "w.safetensors"))
    for k, v in loaded.backbone.model.state_dict().items():
        assert torch.equal(v, state[k]), k
    with pytest.raises(CardIDError, match="cannot load timm weights"):
        create_student("tiny-cnn", 32, pretrained=True, weights=str(tmp_path / "missing.safetensors"))


@pytest.mark.slow
def test_distill_cli_and_ddp(tmp_path, teacher_run):
    import json

    from cardid.cli import main
    from cardid.config import save_config

    teacher, cat, _ = teacher_run
    assert (
        main(
            [
                "distill",
                "--preset",
                "tiny",
                "--teacher",
                str(teacher),
                "--students",
                "tiny-cnn",
                "--data",
                str(cat.root),
                "--out",
                str(tmp_path / "cli"),
                "--set",
                "steps=4",
                "--set",
                "eval_every=4",
            ]
        )
        == 0
    )
    assert (tmp_path / "cli" / "students" / "tiny-cnn" / "model.json").is_file()
    cfg = dcfg(tmp_path / "ddp", teacher_run, "steps=4", "eval_every=4", "batch_size=16")
    save_config(cfg, tmp_path / "ddp.yaml")
    proc = torchrun(2, 29534, "distill", "--config", str(tmp_path / "ddp.yaml"))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    metrics = json.loads((tmp_path / "ddp" / "run" / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["global_batch"] == 16
