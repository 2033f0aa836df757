"""The package's import graph: no cycle, layers that point one way, every module importable on its
own with warnings as errors, and a parser that loads no heavy library.

Layers, lowest first (a module imports only its own layer or lower ones):
  foundation  config, checks (config-load checks), mergekit_registry (merge methods and what they
              read), paths, integrity, hub, io, errors (no study fact beyond the config's own)
  grid        growup.study: runs, names, setups, starts, figures, datasets, job specs
  model math  the model's shape, cloning and per-token cost (growup.models' core modules)
  accounting  growup.accounting: tokens, FLOPs and lineage of every run
  stages      data, models (verbs: commands), fetch, train, evaluate, merge, report,
              artifacts; their packages import one another without a cycle
  cli         parsing only; it reaches a verb's handler through importlib when the verb runs
  warm        the `growup` command (growup.warm.client: a warm worker, else the cli in-process)
              and the warm fork server, which imports every verb through the cli
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
    "growup.mergekit_registry",
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
    if module.startswith("growup.warm"):
        return 6
    return 5 if module in ("growup.cli", "growup.__main__") else 4


def stage(module: str) -> str:
    """The stage package of a stage-layer module (growup.train.loop -> train)."""
    return module.split(".")[1]


def in_functions(tree: ast.Module) -> set[int]:
    """The ids of every node inside a function (a function-local import runs only when called)."""
    return {
        id(node)
        for fn in ast.walk(tree)
        if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef)
        for node in ast.walk(fn)
    }


def imports(mods: dict[str, Path]) -> dict[str, set[tuple[str, bool]]]:
    """module -> {(imported growup module, whether the import is inside a function)}: module-level
    and function-local imports alike, each submodule import also importing its packages."""
    graph: dict[str, set[tuple[str, bool]]] = {}
    for name, path in mods.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        local = in_functions(tree)
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


# --- what each verb imports: its start-up -----------------------------------------------------

HEAVY_LIBRARIES = ("torch", "transformers", "datasets", "lm_eval", "mergekit", "pandas", "matplotlib")
HEAVY_LIBRARIES += ("scipy", "accelerate", "safetensors", "pyarrow", "tokenizers")
TORCH_AND_MODELS = {"torch", "transformers"}
EVAL = {*TORCH_AND_MODELS, "lm_eval", "datasets", "pandas"}
# every verb's heavy libraries: its handler module's own imports, transitively through growup's
# modules, and the libraries growup.cli.LOADS says it imports when it runs
VERB_LIBRARIES = {
    "model init": TORCH_AND_MODELS,
    "model clone": TORCH_AND_MODELS,
    "model count": TORCH_AND_MODELS,
    "model fetch": TORCH_AND_MODELS,
    "data fetch": {"datasets", "pyarrow"},
    "data replay": {"pyarrow"},
    "data unimax": {"pyarrow"},
    "data tokenizer": {"pyarrow", "tokenizers", "transformers"},
    "data pack": {"pyarrow", "transformers"},
    "train": {*TORCH_AND_MODELS, "accelerate"},
    "eval checkpoint": EVAL,
    "eval sweep": EVAL,
    "eval merge": EVAL,
    "eval tidy": TORCH_AND_MODELS,  # the lineage's FLOPs (accounting) count a LlamaConfig
    "merge configs": {*TORCH_AND_MODELS, "safetensors"},
    "merge run": {*TORCH_AND_MODELS, "safetensors", "mergekit"},
    "merge rerun": {*TORCH_AND_MODELS, "safetensors", "mergekit"},
    "report tables": {"pandas"},
    "report figure": {"pandas", "matplotlib"},
    "report claims": {"pandas", "matplotlib"},  # and its figure
    "artifacts record": set(),
    "artifacts restore": set(),
    "artifacts verify": set(),
    "budget": TORCH_AND_MODELS,
    "admit": TORCH_AND_MODELS,  # every job's resources: model sizes from transformers configs
    "model shape": TORCH_AND_MODELS,  # a Hub base's config read by transformers
    "report leaderboard": {"pandas"},
}
# a deferred import that no verb loads first (growup.cli.LOADS) nor any module imports at the top
DEFERRED_EXEMPT = {
    ("growup.checks", "mergekit.merge_methods"),  # config checks in the workflow's process, cached
}


def _type_checking_only(tree: ast.Module) -> set[int]:
    return {
        id(node)
        for block in tree.body
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for node in ast.walk(block)
    }


def library_imports(path: Path) -> list[tuple[tuple[str, ...], bool]]:
    """The module's imports of other packages: per import, the dotted names it may load (`from a
    import b`: a, a.b) and whether it sits in a function (imports under `if TYPE_CHECKING:` never
    run and are left out)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    local = in_functions(tree)
    skipped = _type_checking_only(tree)
    found = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found += [((alias.name,), id(node) in local) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = (node.module, *(f"{node.module}.{alias.name}" for alias in node.names))
            found.append((names, id(node) in local))
    return [(names, inside) for names, inside in found if not names[0].startswith("growup")]


def module_closure(graph: dict[str, set[tuple[str, bool]]], module: str) -> set[str]:
    """The growup modules importing `module` imports at module level, itself included."""
    seen, todo = set(), [module]
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo += [target for target, inside in graph.get(current, ()) if not inside]
    return seen


def verb_libraries(graph: dict[str, set[tuple[str, bool]]], ref: str) -> set[str]:
    from growup.cli import LOADS

    mods = modules()
    names = {
        names[0]
        for module in module_closure(graph, ref.partition(":")[0])
        for names, inside in library_imports(mods[module])
        if not inside
    }
    names |= {item.partition(":")[0] for item in LOADS.get(ref, ())}
    return {name.split(".")[0] for name in names} & set(HEAVY_LIBRARIES)


def test_each_verb_imports_only_its_heavy_libraries(graph):
    """Which of torch, transformers, lm-eval, mergekit, pandas, ... each verb imports before its
    work starts: a data or report verb pays for no model library (its start-up, README table)."""
    from growup.cli import verbs

    found = {verb: verb_libraries(graph, ref) for verb, ref in verbs().items()}
    assert found == VERB_LIBRARIES


def test_every_deferred_library_import_is_loaded_before_the_verb_starts(graph):
    """An import of a heavy library inside a function is named in growup.cli.LOADS (or its package
    is imported at a module's top): the verb's `imports done` line comes after it, and the warm
    server has imported it, so no warm job pays for it."""
    from growup.cli import LOADS

    mods = modules()
    top = {names[0] for path in mods.values() for names, inside in library_imports(path) if not inside}
    top |= {item.partition(":")[0] for items in LOADS.values() for item in items}

    def covered(name: str) -> bool:
        parts = name.split(".")
        return any(".".join(parts[:i]) in top for i in range(1, len(parts) + 1))

    missing = []
    for module, path in mods.items():
        for names, inside in library_imports(path):
            heavy = names[0].split(".")[0] in HEAVY_LIBRARIES
            if (
                inside
                and heavy
                and not any(map(covered, names))
                and (module, names[0]) not in DEFERRED_EXEMPT
            ):
                missing.append((module, names[0]))
    assert not missing, f"add these to growup.cli.LOADS of the verbs that reach them: {missing}"


LIGHT_VERBS = [verb for verb, libraries in VERB_LIBRARIES.items() if "torch" not in libraries]


@pytest.mark.parametrize("verb", LIGHT_VERBS)
def test_a_light_verb_loads_no_model_library_when_it_starts(verb):
    """What the verb really loads (third-party imports included) before its work: no torch, no
    lm-eval, no mergekit (each verb in a fresh interpreter, as the growup command runs it)."""
    code = (
        "import sys\n"
        "from growup import cli\n"
        f"cli.load(cli.verbs()[{verb!r}])\n"
        "model_libraries = ('torch', 'lm_eval', 'mergekit', 'scipy', 'accelerate')\n"
        "print(sorted(m for m in model_libraries if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "[]"
