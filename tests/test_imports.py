"""The package's shape, read from its own imports (every one: module level, inside functions and
under ``TYPE_CHECKING``): packages by floor, each importing only its own floor and those below;
no import cycle between modules; the runtime decision and recognition import nothing fitted,
evaluated, simulated, trained or piped."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

#: ground first. A top-level module is named as it is; a package by its name.
FLOORS = [
    ("errors", "progress", "search", "io", "onnxrt", "config", "images", "preprocess"),
    ("catalog", "collection"),
    ("synth",),
    ("detect", "models", "printing", "track"),
    ("embed", "data"),
    ("db",),
    ("decision",),
    ("recognize",),
    ("fit",),
    ("eval", "serve", "export", "train", "bundle", "sagemaker"),
    ("cloud",),
    ("pipeline",),
    ("cli",),
]
FLOOR = {name: i for i, names in enumerate(FLOORS) for name in names}


def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _graph() -> dict[str, set[str]]:
    """module → the cardid modules it imports (a package named: its ``__init__``)."""
    modules = {_module_name(p): p for p in (SRC / "cardid").rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        is_pkg = path.name == "__init__.py"
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from the package this module is in
                    pkg = name.split(".") if is_pkg else name.split(".")[:-1]
                    pkg = pkg[: len(pkg) - node.level + 1]
                    base = ".".join([*pkg, base] if base else pkg)
                targets = [base] + [f"{base}.{a.name}" for a in node.names]
            for t in targets:
                while t and t not in modules:  # `from cardid.x import name`: the module cardid.x
                    t = t.rpartition(".")[0]
                if t and t != name and t.startswith("cardid.") and t != "cardid":
                    deps.add(t)
        graph[name] = deps
    return graph


def _top(module: str) -> str:
    return module.split(".")[1]


GRAPH = {m: deps for m, deps in _graph().items() if m != "cardid"}  # the package's face: its version


def test_every_package_has_a_floor():
    assert {_top(m) for m in GRAPH if m != "cardid" and m.count(".") >= 1} - {"assets"} <= set(FLOOR)


def test_no_import_runs_up_a_floor():
    upward = sorted(
        f"{m} → {d}"
        for m, deps in GRAPH.items()
        if m != "cardid"
        for d in deps
        if FLOOR[_top(d)] > FLOOR[_top(m)]
    )
    assert upward == []


def test_no_import_cycle_between_modules():
    """Tarjan's strongly connected components: any with two modules or more is a cycle. A
    package's ``__init__`` that only names what its modules define counts like any module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    cycles = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in GRAPH.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    assert cycles == []


@pytest.mark.parametrize(
    "package, never",
    [
        ("decision", ("fit", "eval", "synth", "train", "pipeline")),
        ("recognize", ("fit", "eval", "synth", "train", "pipeline")),
        ("db", ("decision", "recognize", "fit", "eval")),
    ],
)
def test_the_runtime_imports_nothing_fitted_or_evaluated(package, never):
    found = sorted(
        f"{m} → {d}" for m, deps in GRAPH.items() if _top(m) == package for d in deps if _top(d) in never
    )
    assert found == []


def test_only_the_command_line_imports_the_pipeline():
    found = sorted(
        f"{m} → {d}"
        for m, deps in GRAPH.items()
        for d in deps
        if _top(d) == "pipeline" and _top(m) not in ("pipeline", "cli")
    )
    assert found == []


def test_the_graph_is_read_at_all():
    """The checks above hold of a graph that has the imports everybody knows of."""
    assert "cardid.decision.match" in GRAPH["cardid.recognize.recognizer"]
    assert "cardid.db.store" in GRAPH["cardid.decision.match"]
    assert "cardid.decision.match" in GRAPH["cardid.fit.calibrate"]


def test_no_module_over_350_lines():
    long = sorted(
        f"{p.relative_to(SRC)}: {n}"
        for p in (SRC / "cardid").rglob("*.py")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > 350
    )
    assert long == []
