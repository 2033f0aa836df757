"""The study's merge grid and its mergekit YAML configs.

Grid: methods × setups × language subsets (every subset of at least `min_languages` study
languages, or an explicit list). At paper scale: 5 methods × 3 setups × 26 subsets = 390 merges.
Each merge is a plain mergekit config (`merges/<setup>/<method>/<subset>.yaml`) whose model paths
are relative to the checkout (so the file is the same wherever the study is built), runnable with
`mergekit-yaml` alone from the checkout's root.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from growup.config import MergingSpec, Study
from growup.errors import GrowupError
from growup.train.runs import SETUPS

SEPARATOR = "+"
METHOD_NAME = re.compile(r"[a-z][a-z0-9_]*")


@dataclass(frozen=True)
class Merge:
    setup: str
    method: str
    subset: tuple[str, ...]

    @property
    def subset_name(self) -> str:
        return SEPARATOR.join(self.subset)

    @property
    def name(self) -> str:
        return f"merge-{self.setup}-{self.method}-{self.subset_name}"

    def yaml_path(self, root: str | os.PathLike[str]) -> Path:
        return Path(root) / self.setup / self.method / f"{self.subset_name}.yaml"

    def model_path(self, root: str | os.PathLike[str]) -> Path:
        return Path(root) / self.setup / self.method / self.subset_name

    @classmethod
    def parse(cls, study: Study, setup: str, method: str, subset: str) -> Merge:
        """One merge from its path parts, checked against the config's setups, methods and
        languages (not the whole grid, so a job that merges one subset reads only its values)."""
        if setup not in SETUPS:
            raise GrowupError(f"merge setup {setup!r} is not one of {list(SETUPS)}")
        if not METHOD_NAME.fullmatch(method):
            raise GrowupError(f"merge method {method!r} is not a method name (letters, digits, '_')")
        languages = tuple(subset.split(SEPARATOR))
        unknown = [lang for lang in languages if lang not in study.data.language_table]
        if unknown or len(languages) < 2 or len(set(languages)) != len(languages):
            raise GrowupError(
                f"merge subset {subset!r} must join two or more distinct study languages with "
                f"{SEPARATOR!r}; languages: {list(study.data.language_codes)}"
            )
        return cls(setup, method, languages)


def merging(study: Study) -> MergingSpec:
    return study.merging


def language_subsets(study: Study) -> list[tuple[str, ...]]:
    """Subsets in the config's language order: explicit ones, or all of size >= min_languages."""
    langs = study.data.language_codes
    explicit = merging(study).subsets
    if explicit:
        subsets = [tuple(s.split(SEPARATOR)) for s in explicit]
        for subset in subsets:
            unknown = [lang for lang in subset if lang not in langs]
            if unknown or len(subset) < 2 or len(set(subset)) != len(subset):
                raise GrowupError(
                    f"config key 'merging.subsets': {SEPARATOR.join(subset)!r} must join two or more "
                    f"distinct study languages with {SEPARATOR!r}; languages: {list(langs)}"
                )
        return [tuple(sorted(s, key=langs.index)) for s in subsets]
    low = merging(study).min_languages
    return [c for k in range(low, len(langs) + 1) for c in itertools.combinations(langs, k)]


def merge_grid(study: Study) -> list[Merge]:
    """Every merge of the study, in a fixed order (setup, method, subset); a method entry with
    `setups` runs for those setups only."""
    cfg = merging(study)
    return [
        Merge(s, m, sub)
        for s in cfg.setups
        for m, entry in cfg.methods.items()
        if s in (entry.setups or cfg.setups)
        for sub in language_subsets(study)
    ]


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
    models = [
        {
            "model": reference(f"{lang}-{merge.setup}", checkpoints),
            "parameters": {"weight": cfg.weight, **(method.model_parameters or {})},
        }
        for lang in merge.subset
    ]
    config: dict[str, Any] = {"merge_method": method.merge_method}
    if method.base:
        config["base_model"] = reference(task_vector_base(study, merge.setup, merge.method), checkpoints)
    config.update(models=models, parameters=dict(cfg.parameters), dtype=cfg.dtype)
    return config


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
    return {hub_id: run for run, hub_id in models.items()}


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
    wanted = {f"{lang}-{merge.setup}" for lang in merge.subset}
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
    """The YAML text, headed by the command that reruns it with mergekit alone."""
    seed = f" --random-seed {random_seed}" if random_seed is not None else ""
    header = (
        "# growup merge config (mergekit format). Rerun alone with:\n"
        f"#   mergekit-yaml THIS_FILE OUT_DIR{seed} --trust-remote-code   (from the checkout's root)\n"
        "# (--trust-remote-code: plain transformers loads HyperLlama checkpoints, which carry their code)\n"
    )
    return header + yaml.safe_dump(dict(config), sort_keys=False)


def mergekit_yaml_argv(
    yaml_file: str | os.PathLike[str], out_dir: str | os.PathLike[str], random_seed: int | None
) -> list[str]:
    """The `mergekit-yaml` command that reruns one merge YAML with the upstream tool alone."""
    import sys

    seed = ["--random-seed", str(random_seed)] if random_seed is not None else []
    cli = Path(sys.executable).parent / "mergekit-yaml"
    return [str(cli), str(yaml_file), str(out_dir), *seed, "--trust-remote-code", "--quiet"]


def grid_counts(merges: Sequence[Merge]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for merge in merges:
        counts[merge.setup] = counts.get(merge.setup, 0) + 1
    return counts
