"""SageMaker container conventions as *defaults*: the same entry point runs anywhere.

Inside a SageMaker training container ``SM_MODEL_DIR``, ``SM_CHANNEL_<NAME>`` and ``SM_HPS``
(the job's hyperparameters as JSON) are set; checkpoints synced to S3 live in
``/opt/ml/checkpoints``. These become the lowest configuration layer, below a YAML file, CLI
options and ``--set`` overrides.
"""

from __future__ import annotations

import json
import os
from typing import Any

from cardid.config import parse_overrides
from cardid.errors import CardIDError

SM_CHECKPOINT_DIR = "/opt/ml/checkpoints"


def on_sagemaker(env: dict[str, str] | None = None) -> bool:
    env = os.environ if env is None else env
    return any(k in env for k in ("SM_MODEL_DIR", "SM_TRAINING_ENV", "SM_HPS", "SM_CURRENT_HOST"))


def hyperparameters(env: dict[str, str] | None = None) -> dict[str, Any]:
    """``SM_HPS`` as a nested dict; keys may be dotted (``phase1.steps``) and values strings."""
    env = os.environ if env is None else env
    raw = env.get("SM_HPS")
    if not raw:
        return {}
    try:
        hps = json.loads(raw)
    except json.JSONDecodeError as e:
        raise CardIDError(f"SM_HPS is not valid JSON: {e}") from e
    # the toolkit's own (sagemaker_*) and the entry script's (cardid_*) keys are not run settings
    hps = {k: v for k, v in hps.items() if not k.startswith(("sagemaker_", "cardid_"))}
    return parse_overrides([f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in hps.items()])


def training_defaults(env: dict[str, str] | None = None) -> dict[str, Any]:
    """Defaults for a training config from the SageMaker environment (empty elsewhere)."""
    env = os.environ if env is None else env
    if not on_sagemaker(env):
        return {}
    # the job's CheckpointConfig.LocalPath (cardid's requests use /opt/ml/checkpoints)
    out: dict[str, Any] = {"checkpoint_dir": env.get("CARDID_CHECKPOINT_DIR", SM_CHECKPOINT_DIR), "data": {}}
    if "SM_MODEL_DIR" in env:
        out["out_dir"] = env["SM_MODEL_DIR"]
    if "SM_CHANNEL_TRAIN" in env:
        out["data"]["train"] = env["SM_CHANNEL_TRAIN"]
    if "SM_CHANNEL_VAL" in env:
        out["data"]["val"] = env["SM_CHANNEL_VAL"]
    if "SM_CHANNEL_TEACHER" in env:  # the distillation job's teacher model directory
        out["teacher"] = env["SM_CHANNEL_TEACHER"]
    from cardid.config import merge

    return merge(out, hyperparameters(env))


def detector_defaults(env: dict[str, str] | None = None) -> dict[str, Any]:
    """The detector job's defaults: the dataset channel's YAML, outputs to ``SM_MODEL_DIR``."""
    env = os.environ if env is None else env
    if not on_sagemaker(env):
        return {}
    out: dict[str, Any] = {}
    if "SM_CHANNEL_TRAIN" in env:
        out["data"] = os.path.join(env["SM_CHANNEL_TRAIN"], "pokemon_cards.yaml")
    if "SM_MODEL_DIR" in env:
        out["out_dir"] = env["SM_MODEL_DIR"]
    from cardid.config import merge

    return merge(out, hyperparameters(env))
