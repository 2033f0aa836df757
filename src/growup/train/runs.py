"""Runs of the study by name, and the spec each trains from (schedule, data phases, checkpoints).

Names: `seed`, `english-1x`, `english-2x`, `<lang>-<setup>`, `multilingual-<setup>` with setup in
{1x, 1x-cloned, 2x}. `english-1x-cloned` is a clone of english-1x and is not trained.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from growup.config import ScheduleSpec, Study
from growup.errors import GrowupError

SETUPS = ("1x", "1x-cloned", "2x")


@dataclass(frozen=True)
class Portion:
    dataset: str
    fraction: float
    seed: int


@dataclass(frozen=True)
class Phase:
    portions: tuple[Portion, ...]
    seed: int


@dataclass(frozen=True)
class RunSpec:
    name: str
    kind: str  # seed | english | language | multilingual
    schedule: ScheduleSpec
    phases: tuple[Phase, ...]
    checkpoint_every: int

    @property
    def datasets(self) -> list[str]:
        return sorted({p.dataset for phase in self.phases for p in phase.portions})


def trained_runs(study: Study) -> list[str]:
    """Every run the study trains."""
    langs = [*study.data.language_codes, "multilingual"]
    return ["seed", "english-1x", "english-2x", *[f"{lang}-{setup}" for lang in langs for setup in SETUPS]]


def parse_run(study: Study, name: str) -> tuple[str, str | None, str | None]:
    """(kind, language, setup) of a run name; an unknown name is an error listing the valid ones.
    Parsed by shape and one language lookup, so a job that declares one language can parse it."""
    if name == "seed":
        return "seed", None, None
    lang, _, setup = name.partition("-")
    if setup in SETUPS:
        if lang == "english" and setup != "1x-cloned":
            return "english", None, setup
        if lang == "multilingual":
            return "multilingual", lang, setup
        if lang not in ("english", "multilingual") and lang in study.data.language_table:
            return "language", lang, setup
    raise GrowupError(f"unknown run {name!r}; runs of this study: {trained_runs(study)}")


def language_phases(study: Study, lang: str, budgets: dict) -> list[Phase]:
    """One phase per epoch stage: that epoch of the language plus its replay set (the same fraction
    of it, or the stage's own `replay_fraction` where the authors' configs fix one)."""
    stages = budgets["languages"][lang]["stages"]
    return [
        Phase(
            (
                Portion(lang, s["fraction"], s["seed"]),
                Portion(f"replay-{lang}", s.get("replay_fraction", s["fraction"]), s["seed"]),
            ),
            s["seed"],
        )
        for s in stages
    ]


def run_spec(study: Study, name: str, data_dir: str | os.PathLike[str] = "data") -> RunSpec:
    """The schedule and data phases of one run, from config (and data/unimax.json for languages)."""
    kind, lang, _ = parse_run(study, name)
    t = study.training
    if kind == "seed":
        seeds = stage_seeds(study, "seed", t.seed_code_epochs + 1)
        code = [Phase((Portion("code", 1.0, seeds[i]),), seeds[i]) for i in range(t.seed_code_epochs)]
        mixed_seed = seeds[t.seed_code_epochs]
        phases = [
            *code,
            Phase((Portion("code", 1.0, mixed_seed), Portion("english-80", 1.0, mixed_seed)), mixed_seed),
        ]
        return RunSpec(name, kind, t.schedules["seed"], tuple(phases), t.checkpoint_every_base)
    if kind == "english":
        (seed,) = stage_seeds(study, "english", 1)
        phases = [Phase((Portion("english-20", 1.0, seed),), seed)]
        return RunSpec(name, kind, t.schedules["english"], tuple(phases), t.checkpoint_every_base)
    budgets_file = Path(data_dir) / "unimax.json"
    if not budgets_file.is_file():
        raise GrowupError(f"{str(budgets_file)!r} is missing: run `growup data unimax` first")
    budgets = json.loads(budgets_file.read_text(encoding="utf-8"))
    if kind == "language":
        phases = language_phases(study, lang, budgets)
        return RunSpec(name, kind, t.schedules[lang], tuple(phases), checkpoint_every(study, name))
    portions = tuple(
        p
        for code in study.data.language_codes
        for ph in language_phases(study, code, budgets)
        for p in ph.portions
    )
    return RunSpec(
        name, kind, t.schedules["multilingual"], (Phase(portions, study.seed),), t.checkpoint_every_adaptation
    )


def stage_seeds(study: Study, kind: str, count: int) -> list[int]:
    """Data seeds of a base run's stages: config key `data.base_stage_seeds.<kind>` (the authors
    used 42 for every stage), else `data.epoch_seeds` in order."""
    fixed = study.data.base_stage_seeds.get(kind)
    seeds = (
        list(fixed)
        if fixed
        else [study.data.epoch_seeds[i % len(study.data.epoch_seeds)] for i in range(count)]
    )
    if len(seeds) != count:
        raise GrowupError(
            f"config key 'data.base_stage_seeds.{kind}' has {len(seeds)} seeds; "
            f"the {kind} run has {count} stages"
        )
    return seeds


def checkpoint_every(study: Study, name: str) -> int:
    """Steps between a run's checkpoints: base or adaptation, or `checkpoint_every.languages.<lang>`
    for a language's runs (the authors saved Faroese every 24 steps, once per epoch)."""
    kind, lang, _ = parse_run(study, name)
    if kind in ("seed", "english"):
        return study.training.checkpoint_every_base
    overrides = study.training.checkpoint_every_languages
    if kind == "language" and lang in overrides:
        return int(overrides[lang])
    return study.training.checkpoint_every_adaptation


def start_checkpoint(study: Study, name: str) -> str:
    """The run (or clone) whose final checkpoint a run starts from, by the study's lineage."""
    kind, _, setup = parse_run(study, name)
    if kind == "seed":
        return "init/final"
    if kind == "english":
        return "seed/final" if setup == "1x" else "seed-cloned/final"
    return {"1x": "english-1x/final", "1x-cloned": "english-1x-cloned/final", "2x": "english-2x/final"}[setup]


def start_run(study: Study, name: str) -> str:
    """The checkpoint folder (checkpoints/<this>) whose final/ a run starts from."""
    return start_checkpoint(study, name).split("/")[0]


def run_datasets(study: Study, name: str) -> list[str]:
    """The packed datasets a run reads (known before data/unimax.json exists)."""
    kind, lang, _ = parse_run(study, name)
    if kind == "seed":
        return ["code", "english-80"]
    if kind == "english":
        return ["english-20"]
    langs = study.data.language_codes if kind == "multilingual" else (lang,)
    return [*langs, *(f"replay-{code}" for code in langs)]


def run_model(study: Study, name: str) -> str:
    """Which model a run trains, as a key of `growup.models.build.study_configs`: `1x` or `clone-x<k>`."""
    _, _, setup = parse_run(study, name)
    return "1x" if setup in (None, "1x") else f"clone-x{study.model.clone_factor}"


def run_schedule(study: Study, name: str) -> ScheduleSpec:
    """A run's schedule from config alone (no prepared data needed, unlike `run_spec`)."""
    kind, lang, _ = parse_run(study, name)
    return study.training.schedules[lang if kind == "language" else kind]


def run_gpus(study: Study, name: str) -> int:
    """GPUs of a run from config key `resources.gpus` (base: seed and english runs)."""
    kind, _, _ = parse_run(study, name)
    return study.resources.gpus["base" if kind in ("seed", "english") else kind]


def run_resources(study: Study, name: str) -> dict[str, int]:
    """Scheduler resources of a training job from its FLOPs: GPUs, runtime (min), threads, memory."""
    from growup.models.build import study_configs
    from growup.models.flops import flops_per_token

    res = study.resources
    gpus = run_gpus(study, name)
    config = study_configs(study)[run_model(study, name)]
    flops = (
        flops_per_token(config, study.training.sequence_length)
        * study.training.tokens_per_step
        * run_schedule(study, name).steps
    )
    minutes = flops / (res.flops_per_second * max(gpus, 1)) / 60
    return {
        "gpus": gpus,
        "runtime": int(minutes * 1.5) + 10,
        "threads": res.threads,
        "mem_mb": res.mem_mb,
        "flops": int(flops),
    }


def run_slurm_resources(study: Study, name: str, per_node: int) -> dict[str, int | str | None]:
    """A training job's SLURM-facing resources (`growup.train.launch.slurm_resources`) by run name."""
    from growup.train.launch import slurm_resources

    return slurm_resources(run_gpus(study, name), per_node)
