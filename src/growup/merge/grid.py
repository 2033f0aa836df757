"""The mergekit YAML configs of the study's merges (the grid itself is `growup.study.merge_grid`).

Each merge is a plain mergekit config (`merges/<setup>/<method>/<subset>.yaml`) whose model paths
are relative to the checkout (so the file is the same wherever the study is built), rerun from the
checkout's root with `growup merge rerun FILE OUT` (mergekit's API; no checkpoint code runs).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from growup.config import Study
from growup.errors import GrowupError
from growup.mergekit_registry import MODEL, method_table, plugins
from growup.study import Merge, merging, run_name
from growup.study import grid_counts as grid_counts  # the grid is growup.study's; these names stay here
from growup.study import language_subsets as language_subsets
from growup.study import merge_grid as merge_grid


def task_vector_base(study: Study, setup: str, method: str | None = None) -> str:
    """The run whose weights are the task-vector base of a setup: the method entry's `base_runs`
    (a merge-base ablation), else config `merging.base`."""
    entry = merging(study).methods.get(method) if method else None
    return (entry.base_runs.get(setup) if entry is not None else None) or merging(study).base[setup]


def model_reference(run: str, checkpoints: str | os.PathLike[str]) -> str:
    """What a merge YAML names a run by: the one place that maps a run name to a model reference.
    Its final checkpoint under `checkpoints`, as given (relative to the checkout in the workflow,
    so the YAML is the same wherever the study is built; `growup.merge.run` resolves it)."""
    return (Path(checkpoints) / run / "final").as_posix()


Reference = Callable[[str, Any], str]  # (run, checkpoints root) -> model reference


def merge_config(
    study: Study, merge: Merge, checkpoints: str | os.PathLike[str], reference: Reference = model_reference
) -> dict[str, Any]:
    """The mergekit config of one merge, each run named by `reference(run, checkpoints)`.

    With `merging.reference_configs` set, method, parameters, base model, dtype and model order
    come from the authors' file of that merge; otherwise from the keys of `merging`.
    """
    if merging(study).reference_configs:
        return reference_merge_config(study, merge, checkpoints, reference)
    cfg = merging(study)
    method = cfg.methods.get(merge.method)
    if method is None:
        raise GrowupError(
            f"unknown merge method {merge.method!r}; config key 'merging.methods' has {list(cfg.methods)}"
        )
    weight = {"weight": cfg.weight} if declares_weight(method.merge_method) else {}
    models = [
        {
            "model": reference(merge.run(lang), checkpoints),
            "parameters": {**weight, **(method.model_parameters or {})},
        }
        for lang in merge.subset
    ]
    config: dict[str, Any] = {"merge_method": method.merge_method}
    if method.base:
        config["base_model"] = reference(task_vector_base(study, merge.setup, merge.method), checkpoints)
    parameters = {**cfg.parameters, **(method.parameters or {})}
    config.update(models=models, parameters=parameters, dtype=cfg.dtype)
    return config


def declares_weight(method: str) -> bool:
    """Whether mergekit's `method` takes a weight per model (`merging.weight` goes only to those:
    karcher, for one, declares none). True when the registry is not at hand."""
    reads = method_table().get(method)
    return reads is None or reads.no_effect("weight", MODEL) is None


def reference_file(study: Study, merge: Merge) -> Path:
    """The authors' file of a merge: `<method>_<setup>_<languages>.yaml` (setup 1x-cloned written
    1x_cloned, languages in alphabetical order), under `merging.reference_configs`."""
    folder = Path(str(merging(study).reference_configs)).expanduser()
    name = f"{merge.method}_{merge.setup.replace('-', '_')}_{'_'.join(sorted(merge.subset))}.yaml"
    path = folder / name
    if not path.is_file():
        raise GrowupError(
            f"config key 'merging.reference_configs' is {str(folder)!r}, which has no {name!r}: point it "
            "at mergekit_configs/ of a clone of https://github.com/liu-nlp/multilingual-scaling, or set it "
            "to null"
        )
    return path


def run_of_hub_id(study: Study) -> dict[str, str]:
    """Hub id -> run name, from `released.models` (how the authors' files name each run)."""
    models = study.released.models if study.released is not None else {}
    if not models:
        raise GrowupError("config key 'merging.reference_configs' needs 'released.models' (run -> Hub id)")
    return {hub_id: run for run, hub_id in models.items() if hub_id is not None}


def reference_merge_config(
    study: Study, merge: Merge, checkpoints: str | os.PathLike[str], reference: Reference = model_reference
) -> dict[str, Any]:
    """One of the authors' mergekit configs as it stands, with each Hub id mapped to its run's
    reference: every field and the model order are theirs."""
    path = reference_file(study, merge)
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    runs = run_of_hub_id(study)

    def run_for(hub_id: str) -> str:
        if hub_id not in runs:
            raise GrowupError(f"{path.name}: model {hub_id!r} is not in config key 'released.models'")
        return runs[hub_id]

    if raw.get("merge_method") != merge.method:
        raise GrowupError(f"{path.name}: merge_method {raw.get('merge_method')!r}, expected {merge.method!r}")
    wanted = {run_name(lang, merge.setup) for lang in merge.subset}
    found = [run_for(m["model"]) for m in raw["models"]]
    if sorted(found) != sorted(wanted):
        raise GrowupError(f"{path.name}: models {found}, expected the runs {sorted(wanted)}")
    config = dict(raw)
    config["models"] = [
        {**m, "model": reference(run, checkpoints)} for m, run in zip(raw["models"], found, strict=True)
    ]
    if "base_model" in raw:
        config["base_model"] = reference(run_for(raw["base_model"]), checkpoints)
    return config


def merge_runs(study: Study, merge: Merge) -> list[str]:
    """The runs a merge reads (its models, then its base if any), in the order of its config."""
    config = merge_config(study, merge, "checkpoints", reference=lambda run, _root: run)
    return [m["model"] for m in config["models"]] + ([config["base_model"]] if "base_model" in config else [])


def referenced_paths(config: Mapping[str, Any]) -> list[str]:
    paths = [m["model"] for m in config["models"]]
    return [*paths, config["base_model"]] if "base_model" in config else paths


def to_yaml(config: Mapping[str, Any], random_seed: int | None) -> str:
    """The YAML text, headed by the command that reruns it (growup's registration of HyperLlama
    with mergekit's API: no `--trust-remote-code`, so no checkpoint code runs)."""
    seed = f" --random-seed {random_seed}" if random_seed is not None else ""
    header = (
        "# growup merge config (mergekit format). Rerun it from the checkout's root with:\n"
        f"#   growup merge rerun THIS_FILE OUT_DIR{seed}\n"
        "# (mergekit's Python API; runs no code shipped in a checkpoint, unlike --trust-remote-code)\n"
    )
    method = config.get("merge_method")
    if method in plugins():
        header += (
            f"# merge_method {method} is not mergekit's own: it is {plugins()[method]}, a method growup\n"
            "# registers in mergekit's registry (README 'Merging beyond the paper'), so run this file\n"
            "# with growup: mergekit-yaml alone does not know it\n"
        )
    return header + yaml.safe_dump(dict(config), sort_keys=False)


def rerun_argv(
    yaml_file: str | os.PathLike[str], out_dir: str | os.PathLike[str], random_seed: int | None
) -> list[str]:
    """The `growup merge rerun` command that reruns one merge YAML (what its header prints)."""
    seed = ["--random-seed", str(random_seed)] if random_seed is not None else []
    return [sys.executable, "-m", "growup.cli", "merge", "rerun", str(yaml_file), str(out_dir), *seed]
