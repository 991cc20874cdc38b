"""One command from a catalog to a deployable bundle: recipes of stages, run in order, each once
per identity (``cardid pipeline run RECIPE --out DIR``)."""

from pathlib import Path

from cardid.pipeline.recipe import Recipe, load_recipe, shipped
from cardid.pipeline.runner import PipelineError, RunResult, plan, run


def run_demo(
    out: str | Path = "runs/demo", cards: int = 60, seed: int = 0, overrides: list[str] | None = None
) -> RunResult:
    """``cardid demo``: the ``demo`` recipe (``overrides``: ``key=value``, e.g. ``teacher.config.phase2.steps=4``)."""
    return run(load_recipe("demo", [f"catalog.synth.cards={cards}", f"seed={seed}", *(overrides or [])]), out)


__all__ = ["PipelineError", "Recipe", "RunResult", "load_recipe", "plan", "run", "run_demo", "shipped"]
