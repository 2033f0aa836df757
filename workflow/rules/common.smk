# Globals every rule file shares. The validated study, the grid it implies, and one helper that
# turns a job into its spec (the config values that job reads, a param: growup.study).
# The config file is no job's input; a job reruns when a value it reads changes (its
# `spec` param), never because the file was touched or a comment edited.

import importlib
import os
import re

from growup.config import config_overrides, deep_merge, resolve_config
from growup.merge.grid import merge_runs, reference_file
from growup.study import (
    CLONED,
    CLONES,
    CODE,
    ENGLISH_BASE,
    ENGLISH_CLONE,
    SEED,
    ENGLISH_DATASETS,
    FIGURES,
    LEADERBOARD,
    Merge,
    SETUPS,
    check_study,
    merge_grid,
    fetched_runs,
    made_clones,
    parse_run,
    raw_datasets,
    replay_dataset,
    run_datasets,
    run_source,
    spec_json,
    start_run,
    tokenizer_run,
    trained_runs,
)


def lazily(module, name):
    """growup's `module.name`, imported at its first call. These load torch (a model's size comes
    from its transformers config); a cluster job re-reads this Snakefile twice, and a job that asks
    none of them for its resources (data, report) then starts without paying for torch."""
    return lambda *args, **kwargs: getattr(importlib.import_module(module), name)(*args, **kwargs)


admit_submissions = lazily("growup.admission", "admit_submissions")
drop_local_services = lazily("growup.admission", "drop_local_services")
clone_resources = lazily("growup.resources", "clone_resources")
eval_resources = lazily("growup.resources", "eval_resources")
merge_resources = lazily("growup.resources", "merge_resources")
run_resources = lazily("growup.train.runs", "run_resources")
run_slurm_resources = lazily("growup.train.runs", "run_slurm_resources")

# A --configfile on the command line wins over the default; --config key=value (a nested value
# in YAML form, e.g. --config 'report={method_spread: 0.05}') overrides values like editing the file.
STUDY_CONFIG = (workflow.overwrite_configfiles or ["config/config.yaml"])[-1]
_RAW = deep_merge(resolve_config(STUDY_CONFIG), config_overrides(workflow.config_settings.config or {}))
STUDY = check_study(_RAW, STUDY_CONFIG)  # every value a job would reject, before the DAG
config.clear()
config.update(STUDY.raw)
THREADS = config["resources"]["threads"]

LANGUAGES = list(STUDY.data.language_codes)
RAW_DATASETS = list(raw_datasets(STUDY))
TRAINED_RUNS = trained_runs(STUDY)  # every run of the grid, trained here or fetched
EVALUATED_RUNS = [r for r in TRAINED_RUNS if r != SEED]
# where each run comes from (growup.study.run_source): each rule's wildcards admit only its own runs
FETCHED = fetched_runs(STUDY)  # fetch_checkpoint's runs
TRAINING = [r for r in TRAINED_RUNS if r not in FETCHED]  # train's runs (the seed only if asked for)
MADE_CLONES = made_clones(STUDY)  # the clones it makes, each -> the run it widens
TOKENIZER_RUN = tokenizer_run(STUDY)  # a fetched base brings the tokenizer the data is packed with
MERGES = merge_grid(STUDY)
FIGURE_NAMES = list(FIGURES)


def spec(job, **args):
    """A params function: the job's spec, with `{name}` arguments filled from its wildcards."""
    return lambda wc: spec_json(STUDY, job, **{k: v.format(**wc) for k, v in args.items()})


def run_budgets(wc):
    """data/unimax.json, for the runs whose data schedule it sets (language and multilingual)."""
    kind, _, _ = parse_run(STUDY, wc.run)
    return ["data/unimax.json"] if kind in ("language", "multilingual") else []


def merge_of(wc):
    return Merge.parse(STUDY, wc.setup, wc.method, wc.subset)  # a subset `isl+swe-s1`: seed 1's runs


def _alternatives(names):  # a pattern of exactly these names; none: one that matches nothing
    return "|".join(re.escape(n) for n in sorted(set(names), key=len, reverse=True)) or "(?!)"


def job_resources(figures, bundled=False):
    """A rule's scheduler resources from one growup.resources function of its wildcards: `gpus`
    (counted by a local `--resources gpus=N` limit and the SLURM job step's srun) and `gpu` (the one
    the SLURM plugin turns into `sbatch --gpus`). A job of a `group: merges` bundle also takes its
    submission's one `bundle_slot` (profiles/slurm): the bundle then asks for what its jobs need
    one after another, as its job step runs them, not for their sum."""
    resources = {
        "mem_mb": lambda wc: figures(wc)["mem_mb"],
        "runtime": lambda wc: figures(wc)["runtime"],
        "gpus": lambda wc: figures(wc)["gpus"],
        "gpu": lambda wc: figures(wc)["gpus"],
    }
    return {**resources, "bundle_slot": 1} if bundled else resources


onstart:
    # Jobs that run elsewhere inherit this process's environment (sbatch --export=ALL): they must
    # not see a service meant for local jobs (the warm fork server's socket). On a cluster, every
    # job and bundle about to be submitted is then checked before the first one is
    # (growup.admission: the declared site, then SLURM's `sbatch --test-only`); a job no node could
    # run stops the workflow here, with one line naming it, the resource and the fix. Local runs
    # start the warm server (warm.smk). Snakemake keeps one onstart handler: this is it.
    if not workflow.local_exec:
        drop_local_services()
    if workflow.executor_plugin.name == "slurm":
        admit_submissions(workflow.dag)
    start_warm()
