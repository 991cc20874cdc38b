"""Run a recipe's stages in order, each at most once per identity, resuming what was killed.

A stage's **key** hashes its kind, its settings, the keys of the stages it reads, the identity of
the outside data it names (each file's path, size and mtime) and the cardid version. A stage that
finishes writes ``<run>/<stage>/stage.json`` (key, time, key figure, outputs, and a manifest of
the files it wrote). On the next run a stage whose record holds the same key is skipped; one that
was killed (a record that says ``running`` under the same key) is run again in the same folder, so
training resumes from its checkpoints; one whose key changed starts from an empty folder. A
finished output edited by hand afterwards is refused, never silently built upon.

The runner knows nothing of what stages do (:mod:`cardid.pipeline.stages` registers them) and
imports nothing heavy: ``--plan`` and a run with nothing to do stay fast.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cardid import __version__
from cardid.io import (
    MARKER,
    check_replaceable,
    inside,
    is_cardid_dir,
    read_json,
    write_json_atomic,
    write_marker,
)
from cardid.pipeline.contract import REGISTRY, PipelineError, StageContext, StageDef, StageResult, stage
from cardid.pipeline.recipe import Recipe, StageSpec

__all__ = [
    "REGISTRY",
    "PipelineError",
    "RunResult",
    "StageContext",
    "StageDef",
    "plan",
    "run",
    "stage",
    "stage_def",
]

STAGE_JSON = "stage.json"


def stage_def(kind: str) -> StageDef:
    import cardid.pipeline.stages  # noqa: F401  (registers every stage kind)

    if kind not in REGISTRY:
        raise PipelineError(f"unknown stage {kind!r} (known: {', '.join(REGISTRY)})")
    return REGISTRY[kind]


# ----------------------------------------------------------------------------- identities
def manifest(paths: list[Path], outputs: bool = False) -> str:
    """Identity of files on disk: every file's relative path, size and mtime (no content read, so
    thousands of scans take milliseconds); a missing path is part of the identity too. ``outputs``:
    a stage's folder, whose record and marker (the runner's) and readers' caches are left out."""
    h = hashlib.sha256()
    for p in paths:
        p = Path(p)
        if not p.exists():
            h.update(f"missing:{p}\n".encode())
            continue
        files = [p] if p.is_file() else sorted(q for q in p.rglob("*") if q.is_file())
        base = p if p.is_dir() else p.parent
        for f in files:
            if outputs and (f.name in (STAGE_JSON, MARKER) or f.suffix == ".cache"):
                continue  # the runner's own record, and caches readers write (ultralytics' labels.cache)
            st = f.stat()
            h.update(f"{f.relative_to(base).as_posix()}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def _hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass
class Planned:
    name: str
    spec: StageSpec
    definition: StageDef
    config: Any
    key: str
    inputs: dict[str, str]  # kind → the stage name it reads
    status: str = ""  # done | run | resume | rerun | skip (not asked for, --only)
    why: str = ""
    record: dict[str, Any] | None = None


@dataclass
class RunResult:
    out: Path
    stages: list[dict[str, Any]] = field(default_factory=list)

    def record(self, name: str) -> dict[str, Any]:
        for s in self.stages:
            if s["name"] == name:
                return s
        raise KeyError(name)


def _resolve_inputs(spec: StageSpec, d: StageDef, earlier: list[StageSpec]) -> dict[str, str]:
    """Kind → the name of the stage it reads: the latest earlier stage of that kind."""
    by_kind = {s.kind: s.name for s in earlier}
    found: dict[str, str] = {}
    for need in d.needs:
        hit = next((k for k in need.split("|") if k in by_kind), None)
        if hit is None:
            raise PipelineError(
                f"stage {spec.name!r} needs a {' or '.join(need.split('|'))!r} stage before it in the recipe"
            )
        found[hit] = by_kind[hit]
    for want in d.wants:
        if want in by_kind:
            found[want] = by_kind[want]
    return found


def plan(recipe: Recipe, out: str | Path, start: str | None = None, only: str | None = None) -> list[Planned]:
    """Every stage of ``recipe`` with its key and what a run would do with it (nothing is run)."""
    out = Path(out)
    names = [s.name for s in recipe.stages]
    for flag, name in (("--from", start), ("--only", only)):
        if name is not None and name not in names:
            raise PipelineError(
                f"{flag} {name}: no such stage in recipe {recipe.name!r} ({', '.join(names)})"
            )
    planned: list[Planned] = []
    keys: dict[str, str] = {}
    for i, spec in enumerate(recipe.stages):
        d = stage_def(spec.kind)
        cfg = spec.settings(d.config)
        inputs = _resolve_inputs(spec, d, recipe.stages[:i])
        ext = {str(p): manifest([p]) for p in d.external(cfg)}
        key = _hash(
            {
                "kind": spec.kind,
                "config": cfg.model_dump(mode="json"),
                "recipe": recipe.shared(),
                "inputs": {k: keys[v] for k, v in inputs.items()},
                "external": ext,
                "cardid": __version__,
            }
        )
        keys[spec.name] = key
        p = Planned(spec.name, spec, d, cfg, key, inputs)
        rec_path = out / spec.name / STAGE_JSON
        p.record = read_json(rec_path, "stage record") if rec_path.is_file() else None
        rec = p.record or {}
        forced = start is not None and i >= names.index(start)
        upstream_runs = any(
            q.status in ("run", "resume", "rerun") for q in planned if q.name in inputs.values()
        )
        # what it read when it ran: an input rebuilt since (--only, --from) makes it stale
        by_name = {q.name: q for q in planned}
        read = rec.get("inputs") or {}
        rebuilt = [v for k, v in inputs.items() if (by_name[v].record or {}).get("manifest") != read.get(k)]
        upstream_runs = upstream_runs or bool(rec and rebuilt)
        if only is not None and spec.name != only:
            p.status = "done" if rec.get("status") == "done" and rec.get("key") == key else "skip"
            p.why = "not asked for (--only)"
        elif forced and not (only and spec.name == only and start is None):
            p.status, p.why = "rerun", f"--from {start}"
        elif rec.get("status") == "done" and rec.get("key") == key and not upstream_runs:
            p.status, p.why = "done", rec.get("figure", "")
        elif rec.get("status") == "running" and rec.get("key") == key and d.resumable and not upstream_runs:
            p.status, p.why = "resume", "killed while running: continues from its checkpoints"
        elif rec:
            p.status = "rerun"
            if rec and rebuilt:
                p.why = f"its input {rebuilt[0]!r} was rebuilt after it ran"
            elif upstream_runs:
                p.why = "an input runs again"
            else:
                p.why = "settings or inputs changed" if rec.get("key") != key else "did not finish"
        else:
            p.status, p.why = "run", "new"
        planned.append(p)
    if only is not None:
        target = next(p for p in planned if p.name == only)
        if target.status == "done":
            target.status, target.why = "rerun", "--only"
        elif target.status == "skip":
            target.status, target.why = "run", "--only"
        for name in target.inputs.values():
            dep = next(p for p in planned if p.name == name)
            if dep.status != "done":
                raise PipelineError(
                    f"--only {only}: it reads stage {name!r}, which has not finished with these settings; "
                    f"run without --only, or with --from {name}"
                )
    _check_outputs(planned, out)
    return planned


def _check_outputs(planned: list[Planned], out: Path) -> None:
    """A finished stage whose files were changed after it finished is refused (its record's
    manifest no longer matches): later stages would build on something nobody can reproduce."""
    for p in planned:
        if p.status != "done" or p.record is None:
            continue
        now = manifest([out / p.name], outputs=True)
        if now != p.record.get("manifest"):
            raise PipelineError(
                f"stage {p.name!r}: its outputs in {out / p.name} changed after it finished "
                f"(files added, removed or edited); rerun it with --from {p.name}"
            )


# ----------------------------------------------------------------------------- running
def run(
    recipe: Recipe,
    out: str | Path,
    start: str | None = None,
    only: str | None = None,
    log: Callable[[str], None] = print,
    on_stage: Callable[[Planned], None] | None = None,
    on_plan: Callable[[list[Planned]], None] | None = None,
) -> RunResult:
    """Run ``recipe`` into ``out``: finished stages are skipped, killed ones resumed, changed ones
    rerun from an empty folder. ``on_plan`` is called with the plan before anything runs, and
    ``on_stage`` with each stage as it finishes (progress)."""
    out = Path(out)
    recipe.check_device()
    if out.exists() and not is_cardid_dir(out) and any(out.iterdir()):
        raise PipelineError(
            f"{out} exists and cardid did not create it: choose another --out (nothing was changed)"
        )
    check_replaceable(out, "pipeline")
    out.mkdir(parents=True, exist_ok=True)
    if not is_cardid_dir(out):
        write_marker(out, "pipeline")
    steps = plan(recipe, out, start, only)
    if on_plan:
        on_plan(steps)
    said = recipe.model_dump(mode="json")  # the recipe as run (rewritten only when it changed)
    if not (out / "recipe.json").is_file() or read_json(out / "recipe.json", "recipe record") != said:
        write_json_atomic(out / "recipe.json", said)
    records: dict[str, dict[str, Any]] = {p.name: p.record for p in steps if p.status == "done" and p.record}
    for p in steps:
        if p.status in ("done", "skip"):
            continue
        d = inside(out, p.name, f"stage {p.name!r}: folder", PipelineError)
        if p.status in ("run", "rerun") and d.exists():
            if not (d / STAGE_JSON).is_file() and d.is_dir() and any(d.iterdir()):
                raise PipelineError(
                    f"stage {p.name!r}: {d} holds files no stage wrote (no {STAGE_JSON}); "
                    "move it away or choose another --out"
                )
            shutil.rmtree(d)  # another identity's outputs (or a non-resumable half): start clean
        d.mkdir(parents=True, exist_ok=True)
        started = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        read = {k: records[v]["manifest"] for k, v in p.inputs.items()}  # what it reads
        head = {"name": p.name, "kind": p.spec.kind, "key": p.key, "started": started, "inputs": read}
        write_json_atomic(d / STAGE_JSON, {**head, "status": "running"})
        log(f"stage {p.name}: {p.why} …")
        ctx = StageContext(p.name, d, out, recipe, {k: records[v] for k, v in p.inputs.items()}, log)
        t0 = time.perf_counter()
        result = p.definition.run(ctx, p.config)
        if not isinstance(result, StageResult):
            raise PipelineError(
                f"stage kind {p.spec.kind!r} returned {type(result).__name__}, not a StageResult"
            )
        result.check(p.definition)
        seconds = round(time.perf_counter() - t0, 1)
        rec = {  # the record is JSON: written here, read back by the next run and later stages
            **head,
            "status": "done",
            "seconds": seconds,
            "figure": result.figure,
            "outputs": {k: ctx.rel(v) for k, v in result.outputs.items()},
            "metrics": result.metrics,
            "cardid": __version__,
        }
        rec["manifest"] = manifest([d], outputs=True)
        write_json_atomic(d / STAGE_JSON, rec)
        p.record, p.status, p.why = rec, "done", rec["figure"]
        records[p.name] = rec
        if on_stage:
            on_stage(p)
    res = RunResult(out, [p.record for p in steps if p.record and p.record.get("status") == "done"])
    write_json_atomic(out / "summary.json", {"recipe": recipe.name, "stages": res.stages})
    return res
