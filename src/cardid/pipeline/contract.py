"""The stage contract: what a stage kind declares and what it is handed (its folder, its inputs'
records, the recipe). Stages import this module alone; the runner imports it and the stages."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cardid.errors import CardIDError
from cardid.pipeline.recipe import Recipe


class PipelineError(CardIDError):
    """A recipe or run that cannot go on; the message names the stage and what to do."""


@dataclass(frozen=True)
class StageResult:
    """What a stage hands back: its key figure (one line for the table), the files it made by
    name (each declared by its kind, see :class:`StageDef`), and its metrics (what later stages
    and the run's summary read)."""

    figure: str
    outputs: dict[str, Path | str] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)

    def check(self, definition: StageDef) -> None:
        """Outputs and metrics only of those its kind declares; every output a path on disk."""
        kind, declared, kind_metrics = definition.kind, definition.outputs, definition.metrics
        if (
            not isinstance(self.figure, str)
            or not isinstance(self.outputs, dict)
            or not isinstance(self.metrics, dict)
        ):
            raise PipelineError(f"stage kind {kind!r} returned a malformed result")
        if declared is not None:
            prefixes = tuple(d[:-1] for d in declared if d.endswith(":*"))  # "student:*": one per student
            extra = sorted(
                k for k in self.outputs if k not in declared and not k.startswith(prefixes or ("\0",))
            )
            if extra:
                raise PipelineError(f"stage kind {kind!r} made undeclared output(s) {extra}")
        if kind_metrics is not None and set(self.metrics) - set(kind_metrics):
            raise PipelineError(
                f"stage kind {kind!r} reported undeclared metric(s) {sorted(set(self.metrics) - set(kind_metrics))}"
            )
        missing = [k for k, v in self.outputs.items() if not Path(v).exists()]
        if missing:
            raise PipelineError(f"stage kind {kind!r}: its output(s) {missing} are not on disk")


@dataclass
class StageDef:
    """What a stage kind is: its settings (a pydantic model), the stages it reads, and its function.

    ``needs``: kinds it reads (``"dataset|catalog"``: the first the recipe has); ``wants``: kinds
    it reads when the recipe has them. ``external(cfg)``: outside paths whose identity enters the
    key. ``resumable``: a killed run continues in the same folder (training checkpoints).
    ``outputs``: the names of the files it may make; ``metrics``: the metrics later stages may
    read of it (None: not declared)."""

    kind: str
    config: type
    run: Callable[[StageContext, Any], StageResult]
    needs: tuple[str, ...] = ()
    wants: tuple[str, ...] = ()
    external: Callable[[Any], list[Path]] = lambda cfg: []
    resumable: bool = False
    doc: str = ""
    outputs: tuple[str, ...] | None = None
    metrics: tuple[str, ...] | None = None


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

    def metric(self, kind: str, name: str, default: Any = None) -> Any:
        """A metric an earlier stage declared (``ctx.metric("db", "unknown")``); a name its kind
        does not declare is an error, never a silent default."""
        declared = REGISTRY[kind].metrics if kind in REGISTRY else None
        if declared is not None and name not in declared:
            raise PipelineError(
                f"stage kind {kind!r} declares no metric {name!r} (it has {', '.join(declared)})"
            )
        return self.input(kind)["metrics"].get(name, default)

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
