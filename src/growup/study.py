"""Each job's resolved spec: exactly the config values one `growup` verb reads, and nothing else.

A Snakemake rule passes `spec_json(STUDY, job, **args)` as a param and the verb builds its
`Study` from that spec alone (`Study.from_spec`); a verb run by hand with `--configfile` goes
through the same projection. So Snakemake reruns a job when, and only when, a value the job
reads changes (params are a rerun trigger), and a value a job does not declare cannot affect it:
reading it raises. Read patterns are dotted config keys: `*` is any key, a trailing `[]` keeps a
mapping's keys without their values, and a key keeps everything below it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from growup.config import Study, load_config, project
from growup.errors import GrowupError
from growup.train.runs import parse_run

FIGURES = (
    "data_efficiency",
    "english_retention",
    "merge_heatmaps",
    "merged_vs_joint",
)  # results/figures/<name>
HUB = "hub"  # hub.root: where Hub ids resolve (GROWUP_HUB_ROOT overrides it)
BENCHMARK_CODES = "data.languages.*.multiblimp"  # study languages and their MultiBLiMP codes
LANGUAGE_CODES = "data.languages[]"  # the study's languages, without their settings


def _fetch(study: Study, source: str) -> list[str]:
    if source in ("english", "code"):
        return [HUB, f"data.{source}"]
    return [HUB, "data.fineweb2", "data.shuffle_seed", f"data.languages.{source}"]


def _train(study: Study, run: str) -> list[str]:
    kind, lang, _ = parse_run(study, run)
    schedule = lang if kind == "language" else kind
    training = [f"training.{key}" for key in study.raw["training"] if key != "schedules"]
    data = {
        "seed": ["data.epoch_seeds", "data.base_stage_seeds"],
        "english": ["data.epoch_seeds", "data.base_stage_seeds"],
        "language": [f"data.languages.{lang}[]"],
        "multilingual": [LANGUAGE_CODES],
    }[kind]
    return ["study", "seed", "model", *training, f"training.schedules.{schedule}", *data]


def _merge(study: Study, setup: str, method: str, subset: str) -> list[str]:
    keys = ("weight", "dtype", "parameters", "random_seed", "reference_configs")
    reads = [f"merging.methods.{method}", f"merging.base.{setup}", *(f"merging.{key}" for key in keys)]
    if study.merging.reference_configs:  # the authors' files name runs by Hub id
        reads.append("released.models")
    return [*reads, LANGUAGE_CODES]


EVALUATION = [HUB, "evaluation", BENCHMARK_CODES]
BOOTSTRAP = ["report.confidence", "report.bootstrap_resamples", "report.bootstrap_seed"]

# job -> the read patterns of that job, given its arguments (the verb's own CLI arguments)
JOBS: Mapping[str, Callable[..., list[str]]] = {
    "data fetch": _fetch,
    "data replay": lambda study: [LANGUAGE_CODES, "data.replay"],
    "data unimax": lambda study: [LANGUAGE_CODES, "data.unimax", "data.epoch_seeds", "data.fixed_schedule"],
    "data tokenizer": lambda study: [HUB, "tokenizer"],
    "data pack": lambda study: [
        "study",
        "training.sequence_length",
        "data.packing",
        "tokenizer.eos_token",
        "tokenizer.bos_token",
    ],
    "model count": lambda study: ["model", "tokenizer.vocab_size", "training.sequence_length"],
    "model init": lambda study: ["seed", "model", "tokenizer.vocab_size"],
    "model clone": lambda study: ["model.clone_factor"],
    "model fetch": lambda study, run: [
        "study",
        HUB,
        "released",
        "model",
        "tokenizer",
        "training",
        LANGUAGE_CODES,
    ],
    "train": _train,
    "eval run": lambda study, run: EVALUATION,
    "eval checkpoint": lambda study: EVALUATION,
    "eval merge": lambda study, setup, method, subset: EVALUATION,
    "eval tidy": lambda study: [BENCHMARK_CODES, *BOOTSTRAP],
    "merge run": _merge,
    "merge configs": lambda study: ["merging", LANGUAGE_CODES, "released.models"],
    "report tables": lambda study: [],
    "report figure": lambda study, name: [],
    "report claims": lambda study: ["study", "report"],
}


def job_reads(study: Study, job: str, **args: Any) -> list[str]:
    """The config keys job `job` reads (read patterns), for these arguments."""
    if job not in JOBS:
        raise GrowupError(f"unknown job {job!r}; jobs: {sorted(JOBS)}")
    return JOBS[job](study, **args)


def job_spec(study: Study, job: str, **args: Any) -> dict[str, Any]:
    """What one job may read: its name, arguments, read patterns and the values they select."""
    reads = sorted(set(job_reads(study, job, **args)))  # canonical: not the config file's key order
    return {"job": job, "args": args, "reads": reads, "values": project(study.raw, reads)}


def spec_json(study: Study, job: str, **args: Any) -> str:
    """`job_spec` as canonical JSON: the Snakemake param of the job (equal text = equal job)."""
    return json.dumps(job_spec(study, job, **args), sort_keys=True, separators=(",", ":"))


def resolve_spec(spec: str | None, configfile: str | None, job: str, **args: Any) -> dict[str, Any]:
    """A verb's job spec: the one Snakemake passed (checked to be for this job), or projected from
    a config file by the same function, so a hand-run verb reads exactly what its job would."""
    if spec is None:
        if configfile is None:
            raise GrowupError("give --configfile (a study config) or --spec (a job spec from the workflow)")
        return job_spec(load_config(configfile), job, **args)
    try:
        given = json.loads(spec)
    except json.JSONDecodeError as exc:
        raise GrowupError(f"--spec is not JSON ({exc}); the workflow passes it, or use --configfile") from exc
    if not isinstance(given, dict) or given.get("job") != job or given.get("args") != args:
        found = (given.get("job"), given.get("args")) if isinstance(given, dict) else given
        raise GrowupError(f"--spec is for job {found}, not {job!r} with {args}")
    return given
