"""The runner on toy stages: keys, skip, resume, --from, --only, --plan, and what it refuses."""

import json

import pytest
import yaml
from pydantic import BaseModel, ConfigDict

from cardid.errors import CardIDError
from cardid.pipeline import load_recipe, plan, run
from cardid.pipeline import runner as runner_mod
from cardid.pipeline.runner import REGISTRY, PipelineError, StageResult, stage

CALLS: list[str] = []


class Source(BaseModel):
    model_config = ConfigDict(extra="forbid")
    value: int = 1
    data: str | None = None  # an outside file whose identity enters the key


class Nothing(BaseModel):
    model_config = ConfigDict(extra="forbid")
    fail_once: bool = False


@pytest.fixture(autouse=True)
def toy_stages():
    import cardid.pipeline.stages  # noqa: F401  (the real kinds, kept beside the toy ones)

    saved = dict(REGISTRY)
    CALLS.clear()

    @stage("t-source", Source, external=lambda cfg: [cfg.data] if cfg.data else [], outputs=("value",))
    def source(ctx, cfg):
        CALLS.append(ctx.name)
        (ctx.dir / "value.txt").write_text(str(cfg.value))
        return StageResult(
            figure=f"value {cfg.value}", outputs={"value": ctx.dir / "value.txt"}, metrics={"v": cfg.value}
        )

    @stage("t-double", Nothing, needs=("t-source",), resumable=True)
    def double(ctx, cfg):
        CALLS.append(ctx.name)
        v = int(ctx.path("t-source", "value").read_text())
        progress = ctx.dir / "progress.txt"  # what a checkpoint is to a training stage
        seen = progress.read_text() if progress.exists() else ""
        progress.write_text(seen + "x")
        if cfg.fail_once and not seen:
            raise KeyboardInterrupt  # killed half-way
        (ctx.dir / "double.txt").write_text(str(2 * v))
        return StageResult(
            figure=f"{2 * v} after {len(seen) + 1} tries", outputs={"double": ctx.dir / "double.txt"}
        )

    @stage("t-sum", Nothing, needs=("t-double",), wants=("t-source",))
    def total(ctx, cfg):
        CALLS.append(ctx.name)
        d = int(ctx.path("t-double", "double").read_text())
        (ctx.dir / "sum.txt").write_text(str(d + 1))
        return StageResult(figure=f"sum {d + 1}", outputs={"sum": ctx.dir / "sum.txt"})

    yield
    REGISTRY.clear()
    REGISTRY.update(saved)


def recipe(tmp_path, overrides=(), **stages):
    stages = stages or {"src": {"kind": "t-source"}, "dbl": {"kind": "t-double"}, "sum": {"kind": "t-sum"}}
    path = tmp_path / "toy.yaml"
    path.write_text(yaml.safe_dump({"name": "toy", "device": "cpu", "stages": stages}, sort_keys=False))
    return load_recipe(path, list(overrides))


def statuses(r, out, **kw):
    return {p.name: p.status for p in plan(r, out, **kw)}


def test_a_rerun_with_nothing_changed_runs_nothing(tmp_path):
    out = tmp_path / "run"
    r = recipe(tmp_path)
    assert statuses(r, out) == {"src": "run", "dbl": "run", "sum": "run"}
    res = run(r, out, log=lambda s: None)
    assert CALLS == ["src", "dbl", "sum"] and (out / "sum" / "sum.txt").read_text() == "3"
    assert [s["figure"] for s in res.stages] == ["value 1", "2 after 1 tries", "sum 3"]
    rec = json.loads((out / "dbl" / "stage.json").read_text())
    assert rec["status"] == "done" and rec["outputs"] == {
        "double": "dbl/double.txt"
    }  # relative: a run can move
    CALLS.clear()
    run(r, out, log=lambda s: None)
    assert CALLS == [] and statuses(r, out) == {"src": "done", "dbl": "done", "sum": "done"}


def test_changed_settings_rerun_the_stage_and_what_reads_it(tmp_path):
    out = tmp_path / "run"
    run(recipe(tmp_path), out, log=lambda s: None)
    CALLS.clear()
    r2 = recipe(tmp_path, ["src.value=5"])
    assert statuses(r2, out) == {"src": "rerun", "dbl": "rerun", "sum": "rerun"}
    run(r2, out, log=lambda s: None)
    assert CALLS == ["src", "dbl", "sum"] and (out / "sum" / "sum.txt").read_text() == "11"
    CALLS.clear()
    r3 = recipe(tmp_path, ["src.value=5", "sum.fail_once=false"])  # an explicit default: same key
    run(r3, out, log=lambda s: None)
    assert CALLS == []


def test_an_outside_input_that_changes_reruns_its_stage(tmp_path):
    data = tmp_path / "data.csv"
    data.write_text("a\n")
    stages = {"src": {"kind": "t-source", "data": str(data)}, "dbl": {"kind": "t-double"}}
    out = tmp_path / "run"
    run(recipe(tmp_path, **stages), out, log=lambda s: None)
    data.write_text("a,b\n")  # edited: size and mtime change
    assert statuses(recipe(tmp_path, **stages), out) == {"src": "rerun", "dbl": "rerun"}


def test_from_and_only(tmp_path):
    out = tmp_path / "run"
    r = recipe(tmp_path)
    with pytest.raises(PipelineError, match="--only sum: it reads stage 'dbl', which has not finished"):
        plan(r, out, only="sum")
    run(r, out, log=lambda s: None)
    CALLS.clear()
    assert statuses(r, out, start="dbl") == {"src": "done", "dbl": "rerun", "sum": "rerun"}
    run(r, out, start="dbl", log=lambda s: None)
    assert CALLS == ["dbl", "sum"]
    CALLS.clear()
    run(r, out, only="dbl", log=lambda s: None)
    assert CALLS == ["dbl"]  # only it; sum is now stale and says so
    assert statuses(r, out)["sum"] == "rerun"
    with pytest.raises(PipelineError, match="--from nope: no such stage"):
        plan(r, out, start="nope")


def test_a_killed_stage_resumes_in_its_folder_and_later_stages_wait(tmp_path):
    out = tmp_path / "run"
    r = recipe(tmp_path, ["dbl.fail_once=true"])
    with pytest.raises(KeyboardInterrupt):
        run(r, out, log=lambda s: None)
    assert json.loads((out / "dbl" / "stage.json").read_text())["status"] == "running"
    assert statuses(r, out) == {"src": "done", "dbl": "resume", "sum": "run"}
    CALLS.clear()
    res = run(r, out, log=lambda s: None)
    assert CALLS == ["dbl", "sum"]
    assert res.record("dbl")["figure"] == "2 after 2 tries"  # it kept what the killed run left


def test_outputs_edited_after_they_finished_are_refused(tmp_path):
    out = tmp_path / "run"
    r = recipe(tmp_path)
    run(r, out, log=lambda s: None)
    (out / "dbl" / "double.txt").write_text("999")
    with pytest.raises(
        PipelineError, match="stage 'dbl': its outputs in .* changed after it finished.*--from dbl"
    ):
        run(r, out, log=lambda s: None)
    run(r, out, start="dbl", log=lambda s: None)  # the way out it names
    assert (out / "sum" / "sum.txt").read_text() == "3"


def test_bad_recipes_say_one_clear_thing(tmp_path):
    with pytest.raises(CardIDError, match="unknown stage 't-nope'"):
        plan(recipe(tmp_path, src={"kind": "t-nope"}), tmp_path / "a")
    with pytest.raises(CardIDError, match="recipe 'toy', stage 'src': unknown key 'valu'"):
        plan(recipe(tmp_path, src={"kind": "t-source", "valu": 2}), tmp_path / "b")
    with pytest.raises(CardIDError, match="stage 'dbl' needs a 't-source' stage before it"):
        plan(recipe(tmp_path, dbl={"kind": "t-double"}), tmp_path / "c")
    with pytest.raises(CardIDError, match="recipe 'toy': unknown key 'devise'"):
        recipe(tmp_path, ["devise=cpu"])
    with pytest.raises(CardIDError, match="unknown recipe 'nope'"):
        load_recipe("nope")
    (tmp_path / "user").mkdir()
    (tmp_path / "user" / "notes.txt").write_text("mine")
    with pytest.raises(PipelineError, match="cardid did not create it"):
        run(recipe(tmp_path), tmp_path / "user", log=lambda s: None)
    assert (tmp_path / "user" / "notes.txt").read_text() == "mine"


def test_a_recipe_asking_for_cuda_without_a_gpu_is_refused_before_anything_runs(tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    r = recipe(tmp_path, ["device=cuda"])
    with pytest.raises(CardIDError, match="asks for device: cuda, but no CUDA GPU is visible"):
        run(r, tmp_path / "run", log=lambda s: None)
    assert CALLS == [] and not (tmp_path / "run").exists()


def test_every_shipped_recipe_loads_and_plans(tmp_path):
    from cardid.pipeline import shipped

    assert {"demo", "cpu-real", "spec-gpu", "sagemaker"} <= set(shipped())
    for name in shipped():
        steps = plan(load_recipe(name), tmp_path / name)
        assert steps and all(p.status == "run" for p in steps), name


def test_a_manifest_names_what_is_on_disk_and_changes_with_it(tmp_path):
    """Same files, same manifest; a file touched, added or removed, another; the runner's own
    record and readers' caches never count; a missing input counts as missing."""
    import os

    d = tmp_path / "out"
    d.mkdir()
    (d / "a.txt").write_text("a")
    first = runner_mod.manifest([d], outputs=True)
    assert runner_mod.manifest([d], outputs=True) == first
    (d / "stage.json").write_text("{}")
    (d / "labels.cache").write_text("x")
    assert runner_mod.manifest([d], outputs=True) == first  # the runner's record, a reader's cache
    st = (d / "a.txt").stat()
    os.utime(d / "a.txt", ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    touched = runner_mod.manifest([d], outputs=True)
    assert touched != first
    (d / "b.txt").write_text("b")
    assert runner_mod.manifest([d], outputs=True) not in (first, touched)
    (d / "b.txt").unlink()
    assert runner_mod.manifest([d], outputs=True) == touched
    assert runner_mod.manifest([tmp_path / "gone"]) == runner_mod.manifest([tmp_path / "gone"])
    assert runner_mod.manifest([tmp_path / "gone"]) != runner_mod.manifest([tmp_path / "other"])


def test_a_stage_name_is_a_plain_folder_name_never_a_path(tmp_path):
    """A stage named ``../../x``, ``/abs`` or ``.`` deleted that folder (or the finished run)."""
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("mine")
    out = tmp_path / "a" / "b" / "run"
    for name in ("../../../victim", str(victim), ".", "..", "a/b", "[bold]x[/]", "x" * 65, "", "sum.json"):
        path = tmp_path / "bad.yaml"
        path.write_text(yaml.safe_dump({"name": "bad", "stages": {name: {"kind": "t-source"}}}))
        with pytest.raises(CardIDError, match="not a plain name"):
            load_recipe(path)
    assert (victim / "keep.txt").read_text() == "mine" and not out.exists()
    # a folder of the run no stage wrote is never removed to make room for one
    r = recipe(tmp_path)
    (out / "src").mkdir(parents=True)
    (out / "src" / "mine.txt").write_text("mine")
    from cardid.io import write_marker

    write_marker(out, "pipeline")
    with pytest.raises(CardIDError, match="holds files no stage wrote"):
        run(r, out, log=lambda s: None)
    assert (out / "src" / "mine.txt").read_text() == "mine"


def test_recipe_files_and_overrides_that_are_not_plain_yaml(tmp_path):
    bad = {
        "latin.yaml": ("name: caf\xe9\nstages: {src: {kind: t-source}}\n".encode("latin-1"), "not UTF-8"),
        "alias.yaml": (b"a: &x [1, *x]\nstages: {src: {kind: t-source}}\n", "aliases"),
        "laughs.yaml": (
            b'a: &a ["lol","lol"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n'
            b"d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\nstages: {src: {kind: t-source, value: *d}}\n",
            "aliases",
        ),
        "twice.yaml": (
            b"stages:\n  src: {kind: t-source}\n  src: {kind: t-source, value: 2}\n",
            "given twice",
        ),
        "python.yaml": (b"stages: {src: !!python/object/apply:os.system [echo]}\n", "not valid YAML"),
    }
    for name, (data, why) in bad.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(CardIDError, match=why):
            load_recipe(tmp_path / name)
    r = tmp_path / "ok.yaml"
    r.write_text(yaml.safe_dump({"name": "ok", "stages": {"src": {"kind": "t-source"}}}))
    with pytest.raises(CardIDError, match="is a stage; set one of its settings"):
        load_recipe(r, ["src=5"])
    assert load_recipe(r, ["src.value=2", "src.value=3"]).stages[0].settings_["value"] == 3  # the last
    with pytest.raises(CardIDError, match="not a plain YAML value"):
        load_recipe(r, ["src.value=!!python/name:os.system"])
    assert load_recipe(r, ["src.value=4"]).stages[0].settings_["value"] == 4


def test_a_stage_hands_back_a_typed_result_with_its_declared_outputs(tmp_path):
    """A dict, an output its kind does not declare, or one not on disk: refused, naming the kind."""
    from cardid.pipeline.contract import StageResult as Result

    @stage("t-bad", Nothing, outputs=("made",))
    def bad(ctx, cfg):
        CALLS.append(ctx.name)
        (ctx.dir / "made.txt").write_text("x")
        return BAD[0]

    r = recipe(tmp_path, bad={"kind": "t-bad"})
    cases = [
        ({"figure": "a dict"}, "returned dict, not a StageResult"),
        (Result("x", {"other": tmp_path}), r"undeclared output\(s\) \['other'\]"),
        (Result("x", {"made": tmp_path / "nowhere"}), r"output\(s\) \['made'\] are not on disk"),
    ]
    BAD = [None]
    for i, (result, why) in enumerate(cases):
        BAD[0] = result
        with pytest.raises(PipelineError, match=f"stage kind 't-bad'.*{why}|{why}"):
            run(r, tmp_path / f"run{i}", log=lambda s: None)
    BAD[0] = Result("made it", {"made": tmp_path})
    res = run(r, tmp_path / "ok", log=lambda s: None)
    assert res.record("bad")["figure"] == "made it"


def test_a_stage_reads_only_the_metrics_an_earlier_kind_declares(tmp_path):
    @stage("t-declared", Nothing, metrics=("count",))
    def declared(ctx, cfg):
        CALLS.append(ctx.name)
        return StageResult("counted", metrics=DECLARED[0])

    @stage("t-reader", Nothing, needs=("t-declared",))
    def reader(ctx, cfg):
        CALLS.append(ctx.name)
        return StageResult(f"read {ctx.metric('t-declared', READ[0], 0)}")

    DECLARED, READ = [{"count": 3}], ["count"]
    r = recipe(tmp_path, a={"kind": "t-declared"}, b={"kind": "t-reader"})
    assert run(r, tmp_path / "ok", log=lambda s: None).record("b")["figure"] == "read 3"
    READ[0] = "cuont"
    with pytest.raises(
        PipelineError, match="stage kind 't-declared' declares no metric 'cuont' .it has count."
    ):
        run(r, tmp_path / "typo", log=lambda s: None)
    DECLARED[0] = {"count": 3, "extra": 1}
    with pytest.raises(PipelineError, match=r"undeclared metric\(s\) \['extra'\]"):
        run(r, tmp_path / "extra", log=lambda s: None)
