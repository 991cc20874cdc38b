"""What a planned run costs: images to process ÷ images per second → hours → dollars.

Images come from the run configs (steps × global batch per phase / student; epochs × images for
the detector). Images per second should be *measured* on the instance
(``benchmarks/train_throughput.py`` / ``distill_throughput.py`` write JSON with ``img_s``); until
then the table uses stated assumptions and says so. The spec's own table is printed beside ours.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from cardid.errors import CardIDError

#: On-demand USD per hour (us-east-1); managed spot typically saves ~70 % (the spec's figure).
PRICES = {
    "ml.g4dn.xlarge": 0.736,
    "ml.g4dn.2xlarge": 1.053,
    "ml.g5.xlarge": 1.408,
    "ml.g5.2xlarge": 1.515,
    "ml.g5.4xlarge": 2.03,
    "ml.g5.12xlarge": 7.09,
    "ml.p4d.24xlarge": 37.688,
}
SPOT_DISCOUNT = 0.70

#: Images/s assumed when no measurement is given (fwd+bwd, bf16 where the GPU has it). Replace
#: them with `benchmarks/*_throughput.py` numbers from the instance: these are estimates.
ASSUMED_IMG_S = {
    ("teacher-phase1", "ml.g5.4xlarge"): 420.0,  # ViT-L/16 @224 frozen: forward + head only
    ("teacher-phase2", "ml.g5.4xlarge"): 110.0,  # last 4 blocks unfrozen
    ("distill", "ml.g4dn.xlarge"): 95.0,  # teacher forward + three students, one pass
    ("detector", "ml.g4dn.xlarge"): 60.0,  # YOLO11n-OBB @640
}

SPEC_TABLE = [
    ("Teacher fine-tuning (1x)", "ml.g5.4xlarge", 3.0, 1.80),
    ("Hailo student distillation", "ml.g4dn.xlarge", 1.0, 0.25),
    ("iOS student distillation", "ml.g4dn.xlarge", 1.0, 0.25),
    ("Android student distillation", "ml.g4dn.xlarge", 1.0, 0.25),
    ("Detection model", "ml.g4dn.xlarge", 1.0, 0.25),
]


@dataclass
class Line:
    job: str
    instance: str
    images: int
    img_s: float
    source: str  # "measured: <file>" or "assumed"

    @property
    def hours(self) -> float:
        return self.images / self.img_s / 3600

    @property
    def on_demand(self) -> float:
        return self.hours * PRICES[self.instance]

    @property
    def spot(self) -> float:
        return self.on_demand * (1 - SPOT_DISCOUNT)


def _rate(key: str, instance: str, measured: dict[str, float | tuple[float, str]]) -> tuple[float, str]:
    if key in measured:
        v = measured[key]
        return (float(v[0]), v[1]) if isinstance(v, tuple) else (float(v), "measured")
    return ASSUMED_IMG_S[(key, instance)], "assumed"


def load_measured(paths: list[str | Path]) -> dict[str, tuple[float, str]]:
    """Measured images/s per job, with where each came from. A file is ``{"job": "teacher-phase2",
    "img_s": 123.4}``, a dict of job → img/s, or the GPU suite's ``gpu_summary.json`` (its
    ``measured_img_s``, labelled with the GPU it ran on: a rate measured on another GPU than the
    instance's is a lower bound on the hours, not the instance's own figure)."""
    out: dict[str, tuple[float, str]] = {}
    for p in paths:
        try:
            d = json.loads(Path(p).read_text())
        except (OSError, ValueError) as e:
            raise CardIDError(f"measured rates {p}: unreadable ({e})") from e
        if not isinstance(d, dict):
            raise CardIDError(f"measured rates {p}: expected a JSON object")
        if "job" in d and "img_s" in d:
            out[d["job"]] = (float(d["img_s"]), "measured")
        elif isinstance(d.get("measured_img_s"), dict):
            device = (d.get("environment") or {}).get("device", "GPU suite")
            out.update({k: (float(v), f"measured on {device}") for k, v in d["measured_img_s"].items()})
        else:
            out.update({k: (float(v), "measured") for k, v in d.items() if isinstance(v, int | float)})
    return out


def estimate(
    teacher_config: str | Path | None = "configs/teacher-vitl16.yaml",
    detector_images: int = 5000,
    detector_epochs: int = 100,
    measured: dict[str, float | tuple[float, str]] | None = None,
) -> list[Line]:
    from cardid.config import load_config
    from cardid.train.configs import DISTILL_PRESETS, DistillConfig, TeacherConfig, teacher_preset

    measured = measured or {}
    t = load_config(TeacherConfig, teacher_config, defaults=teacher_preset("vitl16"))
    d = load_config(DistillConfig, None, defaults=DISTILL_PRESETS["spec"])
    lines = []
    for key, steps in (("teacher-phase1", t.phase1.steps), ("teacher-phase2", t.phase2.steps)):
        rate, src = _rate(key, "ml.g5.4xlarge", measured)
        lines.append(Line(key, "ml.g5.4xlarge", steps * t.batch_size, rate, src))
    rate, src = _rate("distill", "ml.g4dn.xlarge", measured)
    students = ",".join(d.students)
    lines.append(Line(f"distill ({students}, one pass)", "ml.g4dn.xlarge", d.steps * d.batch_size, rate, src))
    rate, src = _rate("detector", "ml.g4dn.xlarge", measured)
    lines.append(
        Line("detector (YOLO11n-OBB)", "ml.g4dn.xlarge", detector_epochs * detector_images, rate, src)
    )
    return lines
