"""The GPU suite: every CUDA training path of cardid at the real shapes, on one H100/H200, in ≤ 8 minutes.

Run it through ``benchmarks/gpu_suite.sh`` (which installs the wheels the device image lacks). Steps,
in order, each a child process with its own time limit:

1. ``prepare``: a synthetic catalog and detection set (CPU);
2. ``teacher``: ``cardid train teacher`` with the DINOv3 ViT-L/16 shape (random init: no hub here),
   phase 1 (frozen) then phase 2 (last 4 blocks), bf16 autocast, SDPA, fused AdamW, ``torch.compile``;
3. ``distill``: ``cardid distill`` of the three students (ConvNeXt-T@224, ConvNeXt-B@384,
   ViT-S@224) from that teacher in one pass;
4. ``detector``: a few epochs of ``cardid train detector`` (YOLO11n-OBB from its YAML);
5. ``train_throughput``: ``benchmarks/train_throughput.py`` at ViT-L/16, 19,120 classes, with MFU;
6. ``distill_throughput``: ``benchmarks/distill_throughput.py`` at the real shapes;
7. ``onnx_parity``: ``cardid export`` of the distilled ConvNeXt-T student, ONNX parity checked.

Each step writes ``gpu_<step>.json`` into ``--results`` (default benchmarks/results); the whole log
goes to ``gpu_suite.log`` and ``gpu_summary.json`` holds one line per step and the measured images/s
that ``cardid cost --measured benchmarks/results/gpu_summary.json`` uses in place of its assumptions.
A step that fails is reported as failed with its last lines, the later steps still run, and the
suite exits non-zero: nothing is skipped quietly. Without CUDA it refuses to run (exit 2);
``--plan`` writes the step configs and prints the plan without running anything (the CPU test).

    bash benchmarks/gpu_wheels.sh                          # here, once: wheels into .whl/
    bash benchmarks/gpu_suite.sh --results "$OUT"          # on the device (carry .whl)
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
CLI = [sys.executable, "-m", "cardid.cli"]

#: the spec's ViT-L/16 teacher shape, trained briefly from random init (no hub on the device)
TEACHER = {
    "model": {"backbone": "dinov3-vitl16-random", "pretrained": False, "embed_dim": 768},
    "phase1": {"steps": 24, "lr": 1e-3, "warmup_steps": 4},
    "phase2": {"steps": 24, "lr": 1e-4, "backbone_lr": 1e-5, "unfreeze_last_n": 4, "warmup_steps": 4},
    "batch_size": 64,
    "compile": True,
    "device": "cuda",
    "eval_every": 1000,
    "checkpoint_every": 1000,
    "log_every": 6,
    "data": {"workers": 12, "val_views": 1},
}
DISTILL = {
    "students": ["hailo", "ios", "android"],
    "pretrained": False,
    "steps": 24,
    "warmup_steps": 4,
    "batch_size": 32,
    "eval_every": 1000,
    "checkpoint_every": 1000,
    "log_every": 6,
    "device": "cuda",
    "data": {"workers": 12, "val_views": 1},
}
DETECTOR = {
    "model": "yolo11n-obb.yaml",
    "epochs": 2,
    "imgsz": 640,
    "batch": 16,
    "device": "0",
    "workers": 8,
    "export_onnx": False,  # the ultralytics exporter checks its requirements online
}


@dataclass
class Step:
    name: str
    what: str
    argv: list[str]
    timeout_s: int  # its own limit (the suite's --budget may cut it shorter)
    expect_s: int  # what it takes on one H100/H200, compilation included (the budget's plan)
    config: str | None = None  # a YAML this step trains from (validated by --plan)
    config_class: str | None = None  # "module:Class" that must accept it
    needs: list[str] = field(default_factory=list)


#: ``--smoke``: the same steps on CPU at toy sizes, to try the suite's own wiring (paths between
#: steps, result files, the summary) here before a GPU lease is spent on it
SMOKE = {
    "teacher": {
        "model": {"backbone": "dinov3-tiny", "embed_dim": 64, "preprocess": "tiny64"},
        "head": {"margin": 0.2, "scale": 16.0},
        "phase1": {"steps": 2, "warmup_steps": 1},
        "phase2": {"steps": 2, "unfreeze_last_n": 2, "warmup_steps": 1},
        "batch_size": 8,
        "compile": False,
        "device": "cpu",
        "log_every": 1,
        "data": {"workers": 0},
    },
    "distill": {
        "students": ["tiny-cnn"],
        "steps": 2,
        "warmup_steps": 1,
        "batch_size": 8,
        "device": "cpu",
        "log_every": 1,
        "data": {"workers": 0},
    },
    "detector": {"epochs": 1, "imgsz": 64, "batch": 4, "device": "cpu", "workers": 0},
}


#: what each step writes under --work (removed before it runs: training would resume from it)
OUTPUTS = {
    "teacher": ("teacher",),
    "distill": ("distill",),
    "detector": ("detector",),
    "train_throughput": ("train_throughput.json",),
    "distill_throughput": ("distill_throughput.json",),
    "onnx_parity": ("export",),
}


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(base[k], v) if isinstance(v, dict) and isinstance(base.get(k), dict) else v
    return out


def plan(work: Path, smoke: bool = False) -> list[Step]:
    """The steps, their commands and configs (written under ``work``); ``smoke``: toy sizes on CPU."""
    cards, det, teacher, distill = work / "cards", work / "det", work / "teacher", work / "distill"
    cfgs = {
        "teacher": _merge(TEACHER, {"out_dir": str(teacher), "data": {"train": str(cards)}}),
        "distill": _merge(
            DISTILL, {"teacher": str(teacher), "out_dir": str(distill), "data": {"train": str(cards)}}
        ),
        "detector": _merge(
            DETECTOR, {"data": str(det / "pokemon_cards.yaml"), "out_dir": str(work / "detector")}
        ),
    }
    if smoke:
        cfgs = {k: _merge(v, SMOKE[k]) for k, v in cfgs.items()}
    work.mkdir(parents=True, exist_ok=True)
    for name, cfg in cfgs.items():
        (work / f"{name}.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    n_cards, scenes = ("8", "6") if smoke else ("128", "48")
    student = cfgs["distill"]["students"][0]
    if smoke:
        tp = ["--backbone", "dinov3-tiny", "--image", "64", "--batch", "4", "--classes", "100"]
        tp += ["--steps", "1", "--warmup", "0"]
        dt = ["--teacher", "dinov3-tiny", "--teacher-size", "64", "--students", "tiny-cnn", "--batch", "4"]
        dt += ["--dim", "64", "--steps", "1", "--warmup", "0"]
    else:
        tp = ["--backbone", "dinov3-vitl16-random", "--image", "224", "--batch", "64", "--classes", "19120"]
        tp += ["--steps", "8", "--warmup", "3"]
        dt = ["--teacher", "dinov3-vitl16-random", "--teacher-size", "224", "--students", "hailo,ios,android"]
        dt += ["--batch", "64", "--steps", "5", "--warmup", "2"]
    synth = [*CLI, "synth", "cards", "--n", n_cards, "--out", str(cards), "--overwrite"]
    scenes_cmd = [*CLI, "data", "detection", "--catalog", str(cards), "--out", str(det), "--scenes", scenes]
    return [
        Step(
            "prepare",
            f"synthetic catalog ({n_cards} cards) and detection set ({scenes} scenes), CPU",
            ["bash", "-c", f"{shlex.join(synth)} && {shlex.join([*scenes_cmd, '--overwrite'])}"],
            90,
            30,
        ),
        Step(
            "teacher",
            "ViT-L/16 phase 1 + 2: bf16, SDPA, fused AdamW, torch.compile",
            [*CLI, "train", "teacher", "--config", str(work / "teacher.yaml")],
            220,
            150,
            str(work / "teacher.yaml"),
            "cardid.train.configs:TeacherConfig",
            ["prepare"],
        ),
        Step(
            "distill",
            "ConvNeXt-T@224 + ConvNeXt-B@384 + ViT-S@224 from the ViT-L teacher, one pass, bf16",
            [*CLI, "distill", "--config", str(work / "distill.yaml")],
            150,
            80,
            str(work / "distill.yaml"),
            "cardid.train.configs:DistillConfig",
            ["teacher"],
        ),
        Step(
            "detector",
            "YOLO11n-OBB from its YAML, 2 epochs at 640 px",
            [*CLI, "train", "detector", "--config", str(work / "detector.yaml")],
            100,
            50,
            str(work / "detector.yaml"),
            "cardid.detect.yolo:DetectorConfig",
            ["prepare"],
        ),
        Step(
            "train_throughput",
            "teacher step vs the seed's loop, ViT-L/16 @224, 19,120 classes, MFU",
            [
                sys.executable,
                str(BENCH / "train_throughput.py"),
                *tp,
                "--json",
                str(work / "train_throughput.json"),
            ],
            120,
            70,
        ),
        Step(
            "distill_throughput",
            "three students in one pass vs three runs, real shapes",
            [
                sys.executable,
                str(BENCH / "distill_throughput.py"),
                *dt,
                "--json",
                str(work / "distill_throughput.json"),
            ],
            90,
            40,
        ),
        Step(
            "onnx_parity",
            "ONNX export of the distilled ConvNeXt-T student, parity vs PyTorch",
            [
                *CLI,
                "export",
                "--model",
                str(distill / "students" / student),
                "--target",
                "onnx",
                "--out",
                str(work / "export"),
                "--catalog",
                str(cards),
                "--no-int8",
            ],
            60,
            30,
            needs=["distill"],
        ),
    ]


# ----------------------------------------------------------------------------- metrics per step
def _log_rates(run: Path) -> dict:
    """Images/s per phase from a train_log.jsonl, the first window (compilation, warm-up) left out."""
    path = run / "train_log.jsonl"
    if not path.is_file():
        return {}
    recs = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    recs = [r for r in recs if "img_s" in r]
    out: dict = {}
    for phase in sorted({r.get("phase", 0) for r in recs}):
        rs = [r["img_s"] for r in recs if r.get("phase", 0) == phase]
        steady = rs[1:] or rs
        out[f"phase{phase}" if phase else "steps"] = {"first_window_img_s": rs[0], "img_s": max(steady)}
    return out


def metrics_of(step: str, work: Path) -> dict:
    if step == "teacher":
        return _log_rates(work / "teacher")
    if step == "distill":
        return _log_rates(work / "distill")
    if step == "detector":
        p = work / "detector" / "detector.json"
        return json.loads(p.read_text())["val"] if p.is_file() else {}
    if step in ("train_throughput", "distill_throughput"):
        p = work / f"{step}.json"
        return json.loads(p.read_text()) if p.is_file() else {}
    if step == "onnx_parity":
        found = sorted((work / "export").rglob("parity.json"))
        return json.loads(found[0].read_text()) if found else {}
    return {}


def measured_rates(results: dict[str, dict]) -> dict[str, float]:
    """Images/s per job of ``cardid cost`` (its keys), from the steps that ran."""
    rates: dict[str, float] = {}
    tp = results.get("train_throughput", {}).get("metrics", {})
    for k in ("phase1", "phase2"):
        if "ours_img_s" in tp.get(k, {}):
            rates[f"teacher-{k}"] = float(tp[k]["ours_img_s"])
    dt = results.get("distill_throughput", {}).get("metrics", {})
    if "ours_student_img_s" in dt:  # per student-image: a distillation step trains all three
        rates["distill"] = float(dt["ours_student_img_s"]) / max(1, len(dt.get("students", [1])))
    return rates


# ----------------------------------------------------------------------------- running
class GPUSampler:
    """Peak memory and mean utilisation of GPU 0 while a step runs (nvidia-smi, once a second)."""

    def __init__(self):
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        cmd = [
            "nvidia-smi",
            "--query-gpu=memory.used,utilization.gpu",
            "--format=csv,noheader,nounits",
            "-i",
            "0",
        ]
        while not self._stop.wait(1.0):
            try:
                mem, util = subprocess.run(cmd, capture_output=True, text=True, timeout=5).stdout.split(",")
                self.samples.append((float(mem), float(util)))
            except (OSError, ValueError, subprocess.SubprocessError):
                return

    def __enter__(self) -> GPUSampler:
        if shutil.which("nvidia-smi"):
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()

    def summary(self) -> dict:
        if not self.samples:
            return {}
        return {
            "peak_mem_mib": max(m for m, _ in self.samples),
            "mean_util_pct": round(sum(u for _, u in self.samples) / len(self.samples), 1),
        }


def run_step(step: Step, log, limit_s: float) -> dict:
    t = time.perf_counter()
    log.write(f"\n===== {step.name}: {' '.join(step.argv)}\n")
    log.flush()
    tail: list[str] = []
    with GPUSampler() as gpu:
        try:
            proc = subprocess.Popen(
                step.argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT
            )
            deadline = time.monotonic() + limit_s
            timer = threading.Timer(limit_s, proc.kill)
            timer.start()
            assert proc.stdout is not None
            for line in proc.stdout:
                log.write(line)
                tail = [*tail, line.rstrip()][-25:]
            rc = proc.wait()
            timer.cancel()
            timed_out = rc != 0 and time.monotonic() >= deadline
        except OSError as e:
            rc, timed_out, tail = 127, False, [str(e)]
    return {
        "ok": rc == 0,
        "returncode": rc,
        "timed_out": timed_out,
        "seconds": round(time.perf_counter() - t, 1),
        "gpu": gpu.summary(),
        "tail": [] if rc == 0 else tail,
    }


def environment() -> dict:
    import torch

    env = {"torch": torch.__version__, "cuda": torch.version.cuda, "python": sys.version.split()[0]}
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        env |= {
            "device": p.name,
            "memory_gib": round(p.total_memory / 2**30, 1),
            "sms": p.multi_processor_count,
        }
    return env


def check_plan(steps: list[Step]) -> list[str]:
    """What the CPU test checks: each step config loads into its real config class, and every flag
    a benchmark step passes is one its script accepts."""
    import importlib

    from cardid.config import load_config

    problems = []
    names = [s.name for s in steps]
    for s in steps:
        problems += [
            f"{s.name}: needs unknown step {n}" for n in s.needs if n not in names[: names.index(s.name)]
        ]
        if s.config:
            mod, cls = s.config_class.split(":")
            try:
                load_config(getattr(importlib.import_module(mod), cls), s.config)
            except Exception as e:  # a typo in a field name, a wrong type
                problems.append(f"{s.name}: {s.config} does not load into {cls}: {e}")
        script = next((a for a in s.argv if a.endswith(".py")), None)
        if script:
            helptext = subprocess.run(
                [sys.executable, script, "--help"], capture_output=True, text=True
            ).stdout
            problems += [
                f"{s.name}: {Path(script).name} has no option {a}"
                for a in s.argv
                if a.startswith("--") and a not in helptext
            ]
    return problems


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", default=str(ROOT / "runs" / "gpu-suite"))
    ap.add_argument("--results", default=str(BENCH / "results"))
    ap.add_argument("--budget", type=float, default=480.0, help="seconds for the whole suite")
    ap.add_argument("--only", default=None, help="comma-separated steps (and what they need)")
    ap.add_argument(
        "--plan", action="store_true", help="write the configs, check and print the plan; run nothing"
    )
    ap.add_argument(
        "--smoke", action="store_true", help="the same steps on CPU at toy sizes (tries the wiring)"
    )
    args = ap.parse_args()
    work, results = Path(args.work), Path(args.results)
    steps = plan(work, smoke=args.smoke)
    if args.only:
        want = set(args.only.split(","))
        for s in reversed(steps):  # pull in what the wanted steps need
            if s.name in want:
                want |= set(s.needs)
        steps = [s for s in steps if s.name in want]
    if args.plan:
        problems = check_plan(steps)
        print(json.dumps({"steps": [asdict(s) for s in steps], "problems": problems}, indent=1))
        sys.exit(1 if problems else 0)

    import torch

    if not torch.cuda.is_available() and not args.smoke:
        print("gpu_suite: no CUDA device visible; this suite runs on a GPU machine only", file=sys.stderr)
        sys.exit(2)
    results.mkdir(parents=True, exist_ok=True)
    env = environment()
    summary: dict = {
        "environment": env,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "steps": {},
    }
    t0 = time.perf_counter()
    with open(results / "gpu_suite.log", "w") as log:
        log.write(json.dumps(env) + "\n")
        for s in steps:
            failed_needs = [n for n in s.needs if not summary["steps"].get(n, {}).get("ok")]
            left = args.budget - (time.perf_counter() - t0)
            if failed_needs or left < 10:
                why = f"{failed_needs} failed" if failed_needs else f"the {args.budget:.0f} s budget is spent"
                r = {"ok": False, "returncode": None, "seconds": 0.0, "tail": [f"not run: {why}"]}
            else:
                for name in OUTPUTS.get(s.name, ()):  # a fresh run, never a resume of an older one
                    path = work / name
                    shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
                r = run_step(s, log, min(s.timeout_s, left))
            r["what"] = s.what
            r["metrics"] = metrics_of(s.name, work)
            summary["steps"][s.name] = r
            if s.name != "prepare":
                (results / f"gpu_{s.name}.json").write_text(json.dumps({"environment": env, **r}, indent=1))
            status = "ok" if r["ok"] else ("TIMED OUT" if r.get("timed_out") else "FAILED")
            print(
                f"[{time.perf_counter() - t0:6.1f} s] {s.name:<18} {status:<9} {r['seconds']:6.1f} s  {s.what}"
            )
            for line in r["tail"]:
                print(f"    | {line}")
    summary["total_s"] = round(time.perf_counter() - t0, 1)
    summary["measured_img_s"] = measured_rates(summary["steps"])
    (results / "gpu_summary.json").write_text(json.dumps(summary, indent=1))
    print_table(summary)
    bad = [n for n, r in summary["steps"].items() if not r["ok"]]
    if bad:
        print(f"gpu_suite: FAILED steps: {', '.join(bad)} (see gpu_suite.log)", file=sys.stderr)
        sys.exit(1)


def print_table(summary: dict) -> None:
    env = summary["environment"]
    print(
        f"\n{env.get('device', '?')}, torch {env['torch']} (CUDA {env['cuda']}), {summary['total_s']} s in all"
    )
    print(f"{'step':<20}{'status':<8}{'s':>7}{'peak MiB':>10}{'util %':>8}  figures")
    for name, r in summary["steps"].items():
        g, m = r.get("gpu", {}), r.get("metrics", {})
        figs = []
        for k in ("phase1", "phase2", "steps"):
            if isinstance(m.get(k), dict):
                v = m[k]
                figs.append(
                    f"{k} {v.get('img_s', v.get('ours_img_s', 0)):.0f} img/s"
                    + (f" MFU {v['mfu_ours']:.1%} ×{v['speedup']:.2f} vs seed" if "mfu_ours" in v else "")
                )
        if "ours_student_img_s" in m:
            figs.append(f"{m['ours_student_img_s']:.0f} student-img/s ×{m['speedup']:.2f} vs 3 runs")
        if "map50" in m:
            figs.append(f"val mAP@0.5 {m['map50']:.3f}")
        for prec, p in m.items():
            if isinstance(p, dict) and "top1_agreement" in p:
                figs.append(f"{prec} {'passed' if p.get('passed') else 'FAILED'} (cos {p['min_cosine']:.5f})")
        print(
            f"{name:<20}{'ok' if r['ok'] else 'FAIL':<8}{r['seconds']:>7.1f}{g.get('peak_mem_mib', 0):>10.0f}"
            f"{g.get('mean_util_pct', 0):>8.0f}  {'; '.join(figs)}"
        )
    if summary.get("measured_img_s"):
        print("for `cardid cost --measured`:", json.dumps(summary["measured_img_s"]))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
