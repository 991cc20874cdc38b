"""The loop policy both training loops share, checked on hand-made values."""

import time

import torch

from cardid.train.common import Cadence, Throughput, batches_after_resume, is_better, no_best, training_state
from cardid.train.configs import LoopConfig, TeacherConfig
from cardid.train.distributed import Dist, check_in_sync


def test_cadence_logs_evaluates_and_checkpoints_every_n_steps_and_at_each_phase_end():
    cfg = LoopConfig(log_every=4, eval_every=6, checkpoint_every=5)
    c = Cadence(cfg, ends=[7, 10])
    assert [s for s in range(1, 11) if c.log(s)] == [4, 8, 10]
    assert [s for s in range(1, 11) if c.eval(s)] == [6, 7, 10]
    assert [s for s in range(1, 11) if c.checkpoint(s)] == [5, 7, 10]
    assert [s for s in range(1, 11) if Cadence(cfg, ends=[10], eval_every=3).eval(s)] == [3, 6, 9, 10]


def test_throughput_counts_images_since_the_last_take():
    speed = Throughput()
    speed.add(100)
    speed.t0 -= 2.0  # as if two seconds had passed
    assert 45 <= speed.take() <= 50
    assert speed.seen == 0 and time.perf_counter() - speed.t0 < 1.0


def test_selection_is_on_recall_then_map_and_ties_go_to_the_later_model():
    best = no_best()
    assert is_better({"recall@1": 0.0, "map@r": 0.0}, best)
    best = {"recall@1": 0.8, "step": 10, "metrics": {"recall@1": 0.8, "map@r": 0.7}}
    assert is_better({"recall@1": 0.8, "map@r": 0.7}, best)  # a tie: the later model wins
    assert is_better({"recall@1": 0.8, "map@r": 0.71}, best)
    assert not is_better({"recall@1": 0.8, "map@r": 0.69}, best)
    assert not is_better({"recall@1": 0.79, "map@r": 1.0}, best)  # never traded for mAP
    assert is_better({"recall@1": 0.81, "map@r": 0.1}, best)


def test_training_state_holds_what_an_exact_resume_needs():
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.AdamW(model.parameters())
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    best = {"recall@1": 0.5, "step": 4}
    state = training_state(4, opt, sched, best, {"seed": "0"}, torch.device("cpu"), model=model.state_dict())
    assert set(state) == {
        "model",
        "optimizer",
        "scheduler",
        "step",
        "torch_rng",
        "cuda_rng",
        "best",
        "fingerprint",
    }
    assert state["step"] == 4 and state["best"] is best and state["cuda_rng"] is None


def test_batches_are_drawn_before_the_rng_is_restored():
    torch.manual_seed(1)
    saved = torch.get_rng_state()
    expected = torch.rand(1)

    class Loader:  # creating its iterator draws from the global RNG, as a DataLoader's does
        def __iter__(self):
            torch.rand(3)
            return iter([1, 2])

    assert list(batches_after_resume(Loader(), {"torch_rng": saved}, torch.device("cpu"))) == [1, 2]
    assert torch.equal(torch.rand(1), expected)  # the run continues where the checkpoint left it


def test_one_process_is_always_in_sync_with_itself():
    model = torch.nn.Linear(3, 1)
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(1.0)
    # weights 1,1,1 and bias 1 at positions weighted 1, 4/3, 5/3, 2: sum 6
    assert check_in_sync(model, Dist()) == [6.0]


def test_teacher_settings_import_without_the_training_loops():
    import subprocess
    import sys

    code = "import sys, cardid.train.configs; print('cardid.train.teacher' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    assert TeacherConfig().total_steps == 1500


def test_early_stopping_counts_a_margin_gain_only_above_min_delta():
    from cardid.train.common import improved

    best = {"recall@1": 1.0, "step": 5, "metrics": {"recall@1": 1.0, "map@r": 1.0, "margin": 0.40}}
    same = {"recall@1": 1.0, "map@r": 1.0}
    assert improved(same | {"margin": 0.41}, best) and not improved(same | {"margin": 0.40}, best)
    assert not improved(same | {"margin": 0.405}, best, min_delta=0.01)
    assert improved(same | {"margin": 0.415}, best, min_delta=0.01)
    assert not improved({"recall@1": 0.9, "map@r": 1.0, "margin": 0.9}, best)  # never traded for margin
    assert improved(
        {"recall@1": 1.0, "map@r": 1.0, "margin": 0.0}, {"recall@1": 0.9, "step": 1, "metrics": {}}
    )
