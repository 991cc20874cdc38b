"""The GPU suite's plan on CPU: configs load into the real config classes, benchmark flags exist,
steps come in an order that runs, and without CUDA it refuses (never a quiet skip)."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def suite():
    spec = importlib.util.spec_from_file_location("gpu_suite", ROOT / "benchmarks" / "gpu_suite.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["gpu_suite"] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow  # in `make test`; left out of the edit loop
def test_plan_checks_clean_and_covers_every_training_path(suite, tmp_path):
    steps = suite.plan(tmp_path)
    assert suite.check_plan(steps) == []
    names = [s.name for s in steps]
    assert names == [
        "prepare",
        "teacher",
        "distill",
        "detector",
        "train_throughput",
        "distill_throughput",
        "onnx_parity",
    ]
    assert sum(s.expect_s for s in steps) <= 8 * 60  # the budget on one H100/H200
    assert all(s.timeout_s >= s.expect_s for s in steps)
    teacher = yaml.safe_load((tmp_path / "teacher.yaml").read_text())
    assert teacher["model"]["backbone"] == "dinov3-vitl16-random" and teacher["compile"] is True
    assert teacher["phase2"]["unfreeze_last_n"] == 4 and teacher["device"] == "cuda"
    distill = yaml.safe_load((tmp_path / "distill.yaml").read_text())
    assert distill["students"] == ["hailo", "ios", "android"] and distill["teacher"] == str(
        tmp_path / "teacher"
    )
    tp = next(s for s in steps if s.name == "train_throughput").argv
    assert (
        tp[tp.index("--classes") + 1] == "19120" and tp[tp.index("--backbone") + 1] == "dinov3-vitl16-random"
    )


@pytest.mark.slow  # in `make test`; left out of the edit loop
def test_plan_check_reports_a_bad_field_and_an_unknown_flag(suite, tmp_path):
    steps = suite.plan(tmp_path)
    (tmp_path / "teacher.yaml").write_text(yaml.safe_dump({"phase1": {"stepz": 3}}))
    tp = next(s for s in steps if s.name == "train_throughput")
    tp.argv.append("--no-such-flag")
    problems = suite.check_plan(steps)
    assert any(p.startswith("teacher:") and "stepz" in p for p in problems)
    assert any("no option --no-such-flag" in p for p in problems)


def test_only_pulls_in_what_a_step_needs_and_plan_mode_prints_it(tmp_path):
    p = subprocess.run(
        [
            sys.executable,
            "benchmarks/gpu_suite.py",
            "--plan",
            "--only",
            "onnx_parity",
            "--work",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert p.returncode == 0, p.stderr
    plan = json.loads(p.stdout)
    assert [s["name"] for s in plan["steps"]] == ["prepare", "teacher", "distill", "onnx_parity"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal without CUDA")
def test_without_cuda_the_suite_refuses_loudly(tmp_path):
    p = subprocess.run(
        [sys.executable, "benchmarks/gpu_suite.py", "--work", str(tmp_path), "--results", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert p.returncode == 2 and "no CUDA device" in p.stderr
    assert not (tmp_path / "gpu_summary.json").exists()


def test_measured_rates_feed_cardid_cost(suite, tmp_path):
    from cardid.cloud.cost import estimate, load_measured

    steps = {
        "train_throughput": {"metrics": {"phase1": {"ours_img_s": 2000.0}, "phase2": {"ours_img_s": 700.0}}},
        "distill_throughput": {"metrics": {"ours_student_img_s": 3000.0, "students": ["a", "b", "c"]}},
    }
    rates = suite.measured_rates(steps)
    assert rates == {"teacher-phase1": 2000.0, "teacher-phase2": 700.0, "distill": 1000.0}
    path = tmp_path / "gpu_summary.json"
    path.write_text(json.dumps({"environment": {"device": "NVIDIA H200"}, "measured_img_s": rates}))
    lines = {ln.job.split(" ")[0]: ln for ln in estimate(measured=load_measured([path]))}
    assert lines["teacher-phase2"].img_s == 700.0 and "H200" in lines["teacher-phase2"].source
    assert lines["detector"].source == "assumed"


@pytest.mark.slow
def test_the_whole_suite_runs_on_cpu_at_toy_sizes(tmp_path):
    """--smoke: the same steps on CPU (tiny models), so the suite's own wiring (one step's output
    as the next one's input, the result files, the summary) is tried here and not on a GPU lease."""
    pytest.importorskip("ultralytics")
    p = subprocess.run(
        [
            sys.executable,
            "benchmarks/gpu_suite.py",
            "--smoke",
            "--work",
            str(tmp_path / "w"),
            "--results",
            str(tmp_path / "r"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=400,
    )
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    summary = json.loads((tmp_path / "r" / "gpu_summary.json").read_text())
    assert all(r["ok"] for r in summary["steps"].values()), summary["steps"]
    assert {"teacher-phase1", "teacher-phase2", "distill"} <= set(summary["measured_img_s"])
    files = sorted(x.name for x in (tmp_path / "r").iterdir())
    assert len(files) <= 8  # what a device run can bring back
    assert "gpu_suite.log" in files and "gpu_teacher.json" in files
    assert json.loads((tmp_path / "r" / "gpu_onnx_parity.json").read_text())["metrics"]["fp32"]["passed"]


def test_a_failing_or_overrunning_step_is_reported_not_skipped(suite, tmp_path):
    import io

    log = io.StringIO()
    bad = suite.Step("x", "fails", [sys.executable, "-c", "print('boom'); raise SystemExit(3)"], 10, 1)
    r = suite.run_step(bad, log, 10)
    assert (r["ok"], r["returncode"], r["timed_out"]) == (False, 3, False) and r["tail"] == ["boom"]
    slow = suite.Step("y", "hangs", [sys.executable, "-c", "import time; time.sleep(30)"], 10, 1)
    r = suite.run_step(slow, log, 1)
    assert not r["ok"] and r["timed_out"] and r["seconds"] < 10
    assert "===== x:" in log.getvalue()
