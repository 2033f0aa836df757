"""The package's import graph: no cycle, layers that point one way, every module importable on its
own with warnings as errors, and a parser that loads no heavy library.

Layers, lowest first (a module imports only its own layer or lower ones):
  foundation  config, checks (config-load checks), paths, integrity, hub, io, errors (no study fact
              beyond the config's own)
  grid        growup.study: runs, names, setups, starts, figures, datasets, job specs
  model math  the model's shape, cloning and per-token cost (growup.models' core modules)
  accounting  growup.accounting: tokens, FLOPs and lineage of every run
  stages      data, models (verbs: commands), fetch, train, evaluate, merge, report,
              artifacts; their packages import one another without a cycle
  cli         parsing only; it reaches a verb's handler through importlib when the verb runs
The model math sits below accounting because a run's cost is a function of its model's shape.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
FOUNDATION = {
    "growup",
    "growup.config",
    "growup.checks",
    "growup.paths",
    "growup.integrity",
    "growup.hub",
    "growup.io",
    "growup.errors",
}
MODEL_MATH = {
    "growup.models",
    "growup.models.hyperllama",
    "growup.models.cloning",
    "growup.models.flops",
    "growup.models.build",
    "growup.models.attention",
    "growup.models.checkpoint",
}
PENDING_LOCAL: set[tuple[str, str]] = set()  # function-local growup imports allowed (none)


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted((SRC / "growup").rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def layer(module: str) -> int:
    if module in FOUNDATION:
        return 0
    if module == "growup.study":
        return 1
    if module in MODEL_MATH:
        return 2
    if module == "growup.accounting":
        return 3
    return 5 if module in ("growup.cli", "growup.__main__") else 4


def stage(module: str) -> str:
    """The stage package of a stage-layer module (growup.train.loop -> train)."""
    return module.split(".")[1]


def imports(mods: dict[str, Path]) -> dict[str, set[tuple[str, bool]]]:
    """module -> {(imported growup module, whether the import is inside a function)}: module-level
    and function-local imports alike, each submodule import also importing its packages."""
    graph: dict[str, set[tuple[str, bool]]] = {}
    for name, path in mods.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        local = {
            id(node)
            for fn in ast.walk(tree)
            if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef)
            for node in ast.walk(fn)
        }
        edges: set[tuple[str, bool]] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                targets = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
            else:
                continue
            for target in targets:
                while target and target not in mods:
                    target = target.rpartition(".")[0]
                inside = id(node) in local
                while target.startswith("growup"):  # a module, and every package above it
                    if target != name:
                        edges.add((target, inside))
                    target, inside = target.rpartition(".")[0], False
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


@pytest.fixture(scope="module")
def graph() -> dict[str, set[tuple[str, bool]]]:
    return imports(modules())


def test_the_graph_sees_function_local_imports(tmp_path):
    """A cycle hidden in a function is still a cycle: the graph counts function-local imports."""
    module = tmp_path / "hidden.py"
    module.write_text("def f():\n    from growup.train import budget\n    return budget\n", encoding="utf-8")
    assert ("growup.train.budget", True) in imports({**modules(), "hidden": module})["hidden"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_no_import_cycle_between_modules(graph):
    cycle = find_cycle({m: {t for t, _ in edges if t != "growup"} for m, edges in graph.items()})
    assert cycle is None, f"import cycle: {' -> '.join(cycle)}"


def test_layers_point_one_way(graph):
    upward = [
        f"{m} ({layer(m)}) imports {t} ({layer(t)})"
        for m, edges in graph.items()
        for t, _ in edges
        if layer(t) > layer(m)
    ]
    assert not upward, upward


STAGES = {"data", "models", "fetch", "train", "evaluate", "merge", "report", "artifacts"}


def test_stage_packages_import_one_another_without_a_cycle(graph):
    """Stage packages as wholes, models' core modules included: models may not import train
    while train imports models, whichever of their modules the imports name."""
    packages: dict[str, set[str]] = {}
    for m, edges in graph.items():
        if layer(m) == 4:
            packages.setdefault(stage(m), set()).update(
                stage(t) for t, _ in edges if t.count(".") and stage(t) in STAGES and stage(t) != stage(m)
            )
    cycle = find_cycle(packages)
    assert cycle is None, f"stage packages import in a circle: {' -> '.join(cycle)}"


def test_no_function_local_import_of_growup_outside_the_cli(graph):
    local = {(m, t) for m, edges in graph.items() for t, inside in edges if inside and t.count(".")}
    assert local - PENDING_LOCAL == set(), "import these at module level (or break the cycle they hide)"
    assert not any(m == "growup.cli" for m, _ in local)  # the CLI reaches handlers through importlib


def groups() -> dict[str, list[str]]:
    """The modules by top-level part (growup.train.*, growup.config, ...): one fresh interpreter
    each keeps the check isolated without paying for torch's import once per module."""
    found: dict[str, list[str]] = {}
    for module in sorted(modules()):
        found.setdefault(".".join(module.split(".")[:2]), []).append(module)
    return found


@pytest.mark.parametrize("group", sorted(groups()))
def test_every_module_imports_with_warnings_as_errors(group):
    """Each module, first in its own group's fresh interpreter, imports with warnings as errors."""
    code = "".join(f"import {module}\n" for module in groups()[group])
    proc = subprocess.run(
        [sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]


HEAVY = ("matplotlib", "pandas", "torch", "transformers")


@pytest.mark.parametrize("argv", [[], ["train"], ["report", "figure"], ["budget"]])
def test_the_parser_and_help_load_no_heavy_library(argv):
    """Building the parser, and `growup [verb] --help`, import none of matplotlib, pandas, torch
    or transformers: help is instant and `growup train` does not pay for plotting."""
    code = (
        "import sys, contextlib, io\n"
        "from growup.cli import build_parser\n"
        "parser = build_parser()\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        f"    parser.parse_args({[*argv, '--help']!r})\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
