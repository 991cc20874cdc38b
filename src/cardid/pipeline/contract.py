"""The stage contract: what a stage kind declares and what it is handed (its folder, its inputs'
records, the recipe). Stages import this module alone; the runner imports it and the stages."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cardid.errors import CardIDError
from cardid.pipeline.recipe import Recipe


class PipelineError(CardIDError):
    """A recipe or run that cannot go on; the message names the stage and what to do."""


@dataclass
class StageDef:
    """What a stage kind is: its settings (a pydantic model), the stages it reads, and its function.

    ``needs``: kinds it reads (``"dataset|catalog"``: the first the recipe has); ``wants``: kinds
    it reads when the recipe has them. ``external(cfg)``: outside paths whose identity enters the
    key. ``resumable``: a killed run continues in the same folder (training checkpoints)."""

    kind: str
    config: type
    run: Callable[[StageContext, Any], dict[str, Any]]
    needs: tuple[str, ...] = ()
    wants: tuple[str, ...] = ()
    external: Callable[[Any], list[Path]] = lambda cfg: []
    resumable: bool = False
    doc: str = ""


REGISTRY: dict[str, StageDef] = {}


def stage(kind: str, config: type, **kw: Any) -> Callable:
    """Register a stage function: ``@stage("teacher", TeacherStage, needs=("dataset|catalog",))``."""

    def deco(fn: Callable) -> Callable:
        REGISTRY[kind] = StageDef(kind, config, fn, doc=(fn.__doc__ or "").strip().split("\n")[0], **kw)
        return fn

    return deco


@dataclass
class StageContext:
    """What a stage function is handed: its own folder, its inputs' records, the recipe."""

    name: str
    dir: Path
    run_dir: Path
    recipe: Recipe
    inputs: dict[str, dict[str, Any]]
    log: Callable[[str], None] = print

    def input(self, kind: str) -> dict[str, Any]:
        for k in kind.split("|"):
            if k in self.inputs:
                return self.inputs[k]
        raise PipelineError(f"stage {self.name!r} needs a {kind!r} stage before it in the recipe")

    def has(self, kind: str) -> bool:
        return kind in self.inputs

    def path(self, kind: str, output: str) -> Path:
        """An output of an earlier stage (``ctx.path("export", "onnx")``), as an absolute path."""
        rec = self.input(kind)
        where = rec["outputs"].get(output)
        if where is None:
            raise PipelineError(
                f"stage {rec['name']!r} has no output {output!r} (it has {', '.join(rec['outputs'])})"
            )
        p = Path(where)
        return p if p.is_absolute() else self.run_dir / p

    def rel(self, p: Path | str) -> str:
        """How a stage names its outputs: relative to the run folder when inside it (a run can move)."""
        p = Path(p)
        try:
            return p.resolve().relative_to(self.run_dir.resolve()).as_posix()
        except ValueError:
            return str(p)
