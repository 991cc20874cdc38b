"""What a training run is: typed settings for both loops and their named starting points (presets).

Kept apart from the loops so that a recipe, a cost estimate or a cloud launcher can read and check
a run's settings without importing the training code."""

from __future__ import annotations

import copy
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from cardid.errors import CardIDError
from cardid.eval.retrieval import CollapseThresholds
from cardid.models.backbones import fit_preprocess
from cardid.preprocess import Preprocess, get_preset
from cardid.synth.settings import PhotoSimConfig
from cardid.train.losses import LossConfig


# ----------------------------------------------------------------------------- both loops
class DataConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    train: str | None = None  # a catalog (online synthesis) or a dataset (train/ val/ gallery/)
    val: str | None = None  # a query CSV (real photos) or a dataset; default: online val views
    val_views: int = 2
    workers: int = 2
    photo: PhotoSimConfig = PhotoSimConfig()


class LoopConfig(BaseModel):
    """Settings every training loop has (the teacher's and distillation's configs extend it)."""

    model_config = ConfigDict(extra="forbid")
    data: DataConfig = DataConfig()
    batch_size: int = Field(64, ge=1)  # global: across all processes
    weight_decay: float = 0.05
    grad_clip: float = 1.0
    eval_every: int = Field(250, ge=1)
    checkpoint_every: int = Field(250, ge=1)
    log_every: int = Field(10, ge=1)
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"  # cuda: every visible GPU, one per process
    compile: bool = False  # torch.compile the training forward (after the DDP wrap; once per phase)
    # convolutions in NHWC memory (weights and batches): same model, other kernels. On a 2-core CPU a
    # training step is 1.9× faster for EfficientNet-Lite0 and 1.35× for open_nsfw (measured); ViTs
    # have no 4-D tensors but their patch embedding, so nothing changes for them
    channels_last: bool = True
    out_dir: str = "runs/train"
    checkpoint_dir: str | None = None  # default: <out_dir>/checkpoints
    restart_if_unreadable: bool = False  # every checkpoint unreadable: start at step 0 (else stop)
    # stop after this many evaluations without a strictly better model (0: never). With a labelled
    # real validation set (data.val), the run stops on real evidence instead of simulated views.
    patience: int = Field(0, ge=0)
    min_delta: float = Field(0.0, ge=0.0)  # a margin gain below this is not a gain (early stopping)
    collapse_max_mean_cos: float = 0.98
    collapse_min_effective_rank: float = 2.0

    @property
    def collapse_thresholds(self) -> CollapseThresholds:
        return CollapseThresholds(self.collapse_max_mean_cos, self.collapse_min_effective_rank)


# ----------------------------------------------------------------------------- teacher
class ModelConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    backbone: str = "dinov3"
    source: str | None = None  # hub id or local directory (dinov3 default: facebook/dinov3-vitl16-…)
    revision: str | None = None
    pretrained: bool = True
    backbone_kwargs: dict[str, Any] = {}  # e.g. {stage: 2} for opennsfw / efficientnet-lite0
    # ViTs: cls | cls+mean; convolutional backbones: avg | gem | gridCxR | gem+gridCxR
    pooling: str = "cls"
    embed_dim: int = 768
    proj_hidden: int | None = None  # default: the backbone width (1024 for ViT-L → 1024 → 768)
    proj_norm: Literal["batchnorm", "layernorm"] | None = None  # standardise pooled features first
    dropout: float = 0.1
    preprocess: str | dict = "square224"

    def contract(self) -> Preprocess:
        """The run's contract: size and policy from ``preprocess``, pixel normalisation from the
        backbone when its pretrained weights expect their own (open_nsfw: BGR, 0–255, mean)."""
        pre = (
            get_preset(self.preprocess)
            if isinstance(self.preprocess, str)
            else Preprocess.from_dict(self.preprocess)
        )
        return fit_preprocess(pre, self.backbone)


class HeadConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    margin: float = 0.5
    scale: float = 64.0
    subcenters: int = Field(1, ge=1)  # > 1: sub-center ArcFace


class PhaseConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    steps: int = Field(100, ge=0)
    lr: float = 1e-3  # projection + margin head
    backbone_lr: float = 0.0  # > 0 with unfreeze_last_n > 0: phase 2
    unfreeze_last_n: int = 0
    warmup_steps: int = 10


class TeacherConfig(LoopConfig):
    """``cardid train teacher`` settings; saved as ``config.yaml`` beside the model."""

    model: ModelConfig = ModelConfig()
    head: HeadConfig = HeadConfig()
    phase1: PhaseConfig = PhaseConfig(steps=500, lr=1e-3)
    phase2: PhaseConfig = PhaseConfig(steps=1000, lr=1e-4, backbone_lr=1e-5, unfreeze_last_n=4)
    ema_decay: float | None = None
    out_dir: str = "runs/teacher"

    @property
    def total_steps(self) -> int:
        return self.phase1.steps + self.phase2.steps


#: Named starting points (a YAML config and --set overrides go on top, see configs/).
TEACHER_PRESETS: dict[str, dict[str, Any]] = {
    # trains in well under a minute on 2 CPU cores (demo, tests): a tiny random-init DINOv3 at 64 px.
    # A backbone trained from scratch learns nothing while frozen, so phase 2 unfreezes every block.
    "tiny": {
        "model": {"backbone": "dinov3-tiny", "preprocess": "tiny64", "embed_dim": 64},
        "head": {"margin": 0.2, "scale": 16.0},
        "phase1": {"steps": 30, "lr": 1e-3, "warmup_steps": 5},
        "phase2": {"steps": 90, "lr": 2e-3, "backbone_lr": 2e-3, "unfreeze_last_n": 99, "warmup_steps": 5},
        "batch_size": 32,
        "eval_every": 60,
        "checkpoint_every": 30,
        "log_every": 10,
        "data": {"workers": 0, "val_views": 2},
    },
    "vitl16": {},  # the class defaults: the spec's DINOv3 ViT-L/16 teacher
}


def teacher_preset(name: str) -> dict[str, Any]:
    if name not in TEACHER_PRESETS:
        raise CardIDError(f"unknown teacher preset {name!r} (known: {', '.join(TEACHER_PRESETS)})")
    return copy.deepcopy(TEACHER_PRESETS[name])


# ----------------------------------------------------------------------------- distillation
class DistillConfig(LoopConfig):
    """``cardid distill`` settings; saved as ``config.yaml`` in the run directory."""

    teacher: str | None = None  # a teacher model directory
    students: list[str] = Field(default_factory=lambda: ["hailo", "ios", "android"])
    pretrained: bool = True  # timm weights when reachable (or from weights[preset]); random init otherwise
    weights: dict[str, str] = Field(default_factory=dict)
    loss: LossConfig = LossConfig()
    teacher_cache_views: int = Field(
        0, ge=0
    )  # K > 0: teacher embeddings of K fixed views per card, computed once
    # with teacher_cache_views: the students' inputs of those views (uint8, each student's size) are
    # kept in memory when they fit in this many GiB, so no view is rendered twice. The same batches
    # and the same model, without the renders (a 2-core CPU spent ~0.25 s of each 1.45 s step on
    # them); 0: render every batch again
    keep_views_gib: float = Field(4.0, ge=0)
    steps: int = Field(2000, ge=1)
    lr: float = 5e-4
    warmup_steps: int = 100
    batch_size: int = Field(64, ge=2)  # global; the relational loss needs pairs
    eval_every: int = Field(500, ge=1)
    out_dir: str = "runs/distill"


DISTILL_PRESETS: dict[str, dict[str, Any]] = {
    "spec": {},
    # two tiny students in well under a minute on 2 CPU cores (demo, tests)
    "tiny": {
        "students": ["tiny-cnn"],
        "pretrained": False,
        "steps": 150,
        "lr": 3e-3,
        "warmup_steps": 10,
        "batch_size": 32,
        "eval_every": 75,
        "checkpoint_every": 50,
        "data": {"workers": 0, "val_views": 2},
    },
}
