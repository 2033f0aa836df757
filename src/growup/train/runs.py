"""The spec each run of the study trains from (schedule, data phases, checkpoints) and the
scheduler resources of its job. Which runs there are, and what their names mean, is
`growup.study`'s; what they cost is `growup.accounting`'s.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from growup.accounting import run_cost, schedule_key
from growup.config import ScheduleSpec, Study
from growup.errors import GrowupError
from growup.study import CODE, ENGLISH_ADAPTATION, ENGLISH_BASE, parse_name, parse_run, replay_dataset
from growup.train.launch import slurm_resources


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


def language_phases(study: Study, lang: str, budgets: dict) -> list[Phase]:
    """One phase per epoch stage: that epoch of the language plus its replay set (the same fraction
    of it, or the stage's own `replay_fraction` where the authors' configs fix one)."""
    stages = budgets["languages"][lang]["stages"]
    return [
        Phase(
            (
                Portion(lang, s["fraction"], s["seed"]),
                Portion(replay_dataset(lang), s.get("replay_fraction", s["fraction"]), s["seed"]),
            ),
            s["seed"],
        )
        for s in stages
    ]


def replicate_seed(seed: int, replicate: int | None) -> int:
    """A data seed as seed replicate `replicate` draws it: the seed itself for the study's own runs
    (None), else a stream of its own, mixed from both (numpy's SeedSequence)."""
    if replicate is None:
        return seed
    return int(np.random.SeedSequence([seed, replicate]).generate_state(1)[0])


def reseeded(spec: RunSpec, replicate: int | None) -> RunSpec:
    """`spec` with every phase's and portion's seed drawn for replicate `replicate`: the same start
    model and data, another order (and, for a partial epoch, another share of it)."""
    if replicate is None:
        return spec
    phases = tuple(
        Phase(
            tuple(Portion(p.dataset, p.fraction, replicate_seed(p.seed, replicate)) for p in phase.portions),
            replicate_seed(phase.seed, replicate),
        )
        for phase in spec.phases
    )
    return replace(spec, phases=phases)


def run_spec(study: Study, name: str, data_dir: str | os.PathLike[str] = "data") -> RunSpec:
    """The schedule and data phases of one run, from config (and data/unimax.json for languages);
    a seed replicate (`<run>-s<seed>`) reads them in its own order (`reseeded`)."""
    return reseeded(_run_spec(study, name, data_dir), parse_name(name).replicate)


def _run_spec(study: Study, name: str, data_dir: str | os.PathLike[str]) -> RunSpec:
    kind, lang, _ = parse_run(study, name)
    t = study.training
    if kind == "seed":
        seeds = stage_seeds(study, "seed", t.seed_code_epochs + 1)
        code = [Phase((Portion(CODE, 1.0, seeds[i]),), seeds[i]) for i in range(t.seed_code_epochs)]
        mixed_seed = seeds[t.seed_code_epochs]
        phases = [
            *code,
            Phase((Portion(CODE, 1.0, mixed_seed), Portion(ENGLISH_BASE, 1.0, mixed_seed)), mixed_seed),
        ]
        return RunSpec(name, kind, t.schedules["seed"], tuple(phases), t.checkpoint_every_base)
    if kind == "english":
        (seed,) = stage_seeds(study, "english", 1)
        phases = [Phase((Portion(ENGLISH_ADAPTATION, 1.0, seed),), seed)]
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


def run_schedule(study: Study, name: str) -> ScheduleSpec:
    """A run's schedule from config alone (no prepared data needed, unlike `run_spec`)."""
    return study.training.schedules[schedule_key(study, name)]


def run_gpus(study: Study, name: str) -> int:
    """GPUs of a run from config key `resources.gpus` (base: seed and english runs)."""
    kind, _, _ = parse_run(study, name)
    return study.resources.gpus["base" if kind in ("seed", "english") else kind]


def run_resources(study: Study, name: str) -> dict[str, int]:
    """Scheduler resources of a training job from its FLOPs: GPUs, runtime (min), threads, memory."""
    res = study.resources
    gpus = run_gpus(study, name)
    flops = run_cost(study, name).flops
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
    return slurm_resources(run_gpus(study, name), per_node)
