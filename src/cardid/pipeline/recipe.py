"""Recipes: which stages run, in which order, with which settings (YAML, checked before anything runs).

A recipe names its stages in order; each stage's settings are that kind's typed config, so an
unknown stage or key is one clear error, not a default run. Strings may say ``{realdata}`` (the
recipe's real-data folder) and ``{recipes}`` (the folder of the shipped recipes and configs).
Shipped recipes live in ``cardid/pipeline/recipes/`` and are named by their file name::

    name: demo
    device: cpu
    stages:
      catalog: {synth: {cards: 60}}
      teacher: {preset: tiny}
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cardid.config import merge, parse_overrides, read_mapping, validation_message
from cardid.errors import CardIDError

RECIPES_DIR = Path(__file__).with_name("recipes")


#: a stage's name is its folder in the run: a plain name, never a path (``..``, ``/x``, ``.``)
STAGE_NAME = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"


class StageSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str  # checked against STAGE_NAME by load_recipe, with a message naming the rule
    kind: str
    settings_: dict[str, Any] = Field(default_factory=dict, alias="settings")
    recipe: str = ""
    realdata: str = ""

    def settings(self, cls: type[BaseModel]) -> BaseModel:
        values = {"realdata": self.realdata, "recipes": str(RECIPES_DIR)}
        try:  # placeholders in the settings given and in the kind's own defaults
            given = cls.model_validate(_substitute(self.settings_, values))
            return cls.model_validate(_substitute(given.model_dump(), values))
        except ValidationError as e:
            raise CardIDError(
                f"recipe {self.recipe!r}, stage {self.name!r}: {validation_message(e)}"
            ) from None


def _substitute(obj: Any, values: dict[str, str]) -> Any:
    if isinstance(obj, str):
        for k, v in values.items():
            obj = obj.replace("{" + k + "}", v)
        return obj
    if isinstance(obj, dict):
        return {k: _substitute(v, values) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_substitute(v, values) for v in obj]
    return obj


class SageMakerSettings(BaseModel):
    """Where the training stages run when ``execution: sagemaker`` (the ``cardid cloud launch`` fields)."""

    model_config = ConfigDict(extra="forbid")
    bucket: str = ""
    role_arn: str = ""
    region: str = "us-east-1"
    spot: bool = True
    instance_type: dict[str, str] = Field(default_factory=dict)  # stage → instance type
    instance_count: int = Field(1, ge=1)
    hf_token_secret: str | None = None
    dry_run: bool = True  # write the requests, launch nothing (validated offline)


class Recipe(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    description: str = ""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    execution: Literal["local", "sagemaker"] = "local"
    seed: int = 0
    realdata: str = "../shared/realdata"
    sagemaker: SageMakerSettings = SageMakerSettings()
    stages: list[StageSpec]

    def shared(self) -> dict[str, Any]:
        """What enters every stage's key besides its own settings."""
        return {"device": self.device, "seed": self.seed, "execution": self.execution}

    def stage(self, name: str) -> StageSpec:
        for s in self.stages:
            if s.name == name:
                return s
        raise CardIDError(f"recipe {self.name!r} has no stage {name!r}")

    def check_device(self) -> None:
        if self.device == "cuda" and self.execution == "local":
            import torch

            if not torch.cuda.is_available():
                raise CardIDError(
                    f"recipe {self.name!r} asks for device: cuda, but no CUDA GPU is visible here "
                    "(run it on a GPU machine, with --set device=cpu, or with execution: sagemaker)"
                )


def shipped() -> list[str]:
    return sorted(p.stem for p in RECIPES_DIR.glob("*.yaml"))


def load_recipe(name_or_path: str | Path, overrides: list[str] | None = None) -> Recipe:
    """A shipped recipe by name (``demo``, ``cpu-real``…) or a YAML file, with ``key=value``
    overrides: ``device=cpu``, ``teacher.phase2.steps=10`` (a stage's settings by its name)."""
    p = Path(name_or_path)
    if not p.suffix and not p.exists():
        if str(name_or_path) not in shipped():
            raise CardIDError(
                f"unknown recipe {str(name_or_path)!r} (shipped: {', '.join(shipped())}; or a YAML file)"
            )
        p = RECIPES_DIR / f"{name_or_path}.yaml"
    raw = read_mapping(p, "recipe file")
    if not isinstance(raw.get("stages"), dict) or not raw["stages"]:
        raise CardIDError(f"recipe {p}: needs a `stages:` mapping (stage name → settings)")
    raw = copy.deepcopy(raw)
    stage_names = list(raw["stages"])
    for name in stage_names:
        if not isinstance(name, str) or not re.match(STAGE_NAME, name):
            raise CardIDError(
                f"recipe {p}: stage name {str(name)[:80]!r} is not a plain name (letters, digits, "
                "'-' and '_', 64 at most): it names the stage's folder in the run"
            )
    for key, value in parse_overrides(overrides).items():
        if key in raw["stages"]:
            if not isinstance(value, dict):
                raise CardIDError(
                    f"--set {key}={value!r}: {key!r} is a stage; set one of its settings ({key}.NAME=VALUE)"
                )
            raw["stages"][key] = merge(raw["stages"][key] or {}, value)
        else:
            raw = merge(raw, {key: value})
    stages = []
    for name in stage_names:
        settings = dict(raw["stages"][name] or {})
        kind = settings.pop("kind", name)
        stages.append({"name": name, "kind": kind, "settings": settings})
    raw["stages"] = stages
    raw.setdefault("name", p.stem)
    try:
        recipe = Recipe.model_validate(raw)
    except ValidationError as e:
        raise CardIDError(f"recipe {raw['name']!r}: {validation_message(e)}") from None
    for s in recipe.stages:
        s.recipe, s.realdata = recipe.name, recipe.realdata
    return recipe
