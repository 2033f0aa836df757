"""What the study's non-training jobs ask a scheduler for, from the model each one handles and
the work it does, as training's requests follow its FLOPs (`growup.train.runs.run_resources`).

Memory is the process (Python, torch, transformers and mergekit or lm-eval, measured) plus the
weights the job holds at once; time is the work at the config's `resources.flops_per_second` (or
a disk rate, for jobs that mostly read and write weights), with training's margin (x1.5 + 10 min).
The figures are per job; a bundle (`group: merges`) runs its jobs one after another in its
allocation, so it needs the largest memory, GPUs and threads of its jobs and the sum of their times
(`bundle_resources`). The mini study's merges ask for about 1 GB instead of 16.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from growup.accounting import token_cost
from growup.config import Study
from growup.evaluate.harness import CPU_BATCH, merge_tasks, run_tasks, study_tasks
from growup.merge.grid import merge_runs
from growup.models.build import study_configs
from growup.study import ENGLISH_CLONE, Merge, clone_model, clone_of, run_model
from growup.train.runs import checkpoint_every, run_schedule

MB = 1_000_000  # SLURM's --mem unit as the plugin passes mem_mb
FP32 = 4  # bytes per weight in memory: checkpoints load and merge in float32 on the CPU
# Peak RSS of the process around the weights, with headroom. Measured on the mini study (README,
# per-stage table: peak RSS of the clone jobs 397 MB, of the merges 489 MB, of the evaluations 896 MB).
PROCESS_MB = {"clone": 1000, "merge": 1000, "eval": 1500}
DISK_MB_PER_S = 100  # a shared filesystem's sustained read/write rate for one job: a low estimate
# Minimal pairs per task when `evaluation.limit` is null: BLiMP's 67 paradigms x 1,000 pairs, the
# largest benchmark scored (MultiBLiMP has 201 to 2,801 pairs per language, STUDY.md).
PAIRS_BOUND = 67_000
SENTENCE_TOKENS = 32  # tokens of one scored sentence, an upper estimate for minimal pairs
START_MINUTES = 10  # start-up, model and dataset loading: training's margin too


def _minutes(work_seconds: float) -> int:
    """A job's time limit from its estimated seconds of work: training's margin (x1.5 + 10 min)."""
    return int(work_seconds / 60 * 1.5) + START_MINUTES


def devices(study: Study) -> int:
    """GPUs of an evaluation or merge job: one where the study trains on GPUs, none on a CPU study."""
    return int(any(study.resources.gpus.values()))


def model_params(study: Study, model: str) -> int:
    """Parameters of one of the study's models (`1x` or `clone-x<k>`), from its config."""
    return token_cost(study_configs(study)[model], study.training.sequence_length).params


def _weights_mb(params: int, copies: int) -> int:
    return math.ceil(copies * params * FP32 / MB)


def _job(kind: str, study: Study, weights_mb: int, seconds: float, gpus: int) -> dict[str, int]:
    return {
        "mem_mb": PROCESS_MB[kind] + weights_mb,
        "runtime": _minutes(seconds),
        "gpus": gpus,
        "threads": study.resources.threads,
    }


def clone_resources(study: Study, clone: str) -> dict[str, int]:
    """A HyperCloning job: the source and its k-times wider clone in memory twice (the state dicts
    and the saved copies), read and written once. Cloning runs on the CPU."""
    source = model_params(study, run_model(study, clone_of(clone) or clone))
    wide = model_params(study, clone_model(study.model.clone_factor))
    weights = _weights_mb(source + wide, 2)
    return _job("clone", study, weights, weights / DISK_MB_PER_S, 0)


def merge_model(study: Study, merge: Merge) -> str:
    """The model a merge combines (and its result is): that of the runs it merges."""
    return run_model(study, merge_runs(study, merge)[0])


def merge_resources(study: Study, merge: Merge) -> dict[str, int]:
    """A mergekit job: every input model (and the base of a task-vector method) and the output held
    at once, bounding mergekit's lazy per-tensor loading; as much read and written from disk."""
    inputs = len(merge_runs(study, merge))
    weights = _weights_mb(model_params(study, merge_model(study, merge)), inputs + 1)
    return _job("merge", study, weights, weights / DISK_MB_PER_S, devices(study))


def eval_seconds(study: Study, model: str, tasks: int, checkpoints: int) -> float:
    """Seconds of forward passes: every pair of every task of every checkpoint, two sentences
    each, at 2N FLOPs per token and the config's sustained FLOP/s."""
    e = study.evaluation
    pairs = e.limit if e.limit is not None else PAIRS_BOUND
    tokens = checkpoints * tasks * pairs * 2 * SENTENCE_TOKENS
    return tokens * 2 * model_params(study, model) / study.resources.flops_per_second


def eval_memory(study: Study, model: str) -> int:
    """MB an evaluation holds beyond the process: the model twice (loaded, then placed) and, on a
    CPU study, the logits of one batch (GPU studies keep them on the GPU)."""
    weights = _weights_mb(model_params(study, model), 2)
    if devices(study):
        return weights
    logits = CPU_BATCH * study.training.sequence_length * study.tokenizer.vocab_size * FP32
    return weights + math.ceil(logits / MB)


def run_checkpoints(study: Study, run: str) -> int:
    """Saved step-N checkpoints of a run (every `checkpoint_every` steps and the last one)."""
    steps = run_schedule(study, run).steps
    return max(1, math.ceil(steps / checkpoint_every(study, run)))


def eval_resources(study: Study, run: str | None = None, merge: Merge | None = None) -> dict[str, int]:
    """An evaluation job: a run's sweep over its checkpoints (`run`), one merge (`merge`), or the
    English clone (neither): its tasks' pairs through the model."""
    if merge is not None:
        model, tasks, checkpoints = merge_model(study, merge), len(merge_tasks(study, merge.subset)), 1
    elif run is not None:
        model, tasks, checkpoints = (
            run_model(study, run),
            len(run_tasks(study, run)),
            run_checkpoints(study, run),
        )
    else:
        model, tasks, checkpoints = run_model(study, ENGLISH_CLONE), len(study_tasks(study)), 1
    seconds = eval_seconds(study, model, tasks, checkpoints)
    return _job("eval", study, eval_memory(study, model), seconds, devices(study))


def bundle_resources(jobs: Sequence[Mapping[str, int]]) -> dict[str, int]:
    """What a bundle of jobs run one after another in one allocation needs: the largest memory,
    GPUs and threads of any of them, and the sum of their times."""
    if not jobs:
        raise ValueError("a bundle has at least one job")
    return {
        "mem_mb": max(j["mem_mb"] for j in jobs),
        "runtime": sum(j["runtime"] for j in jobs),
        "gpus": max(j["gpus"] for j in jobs),
        "threads": max(j["threads"] for j in jobs),
    }
