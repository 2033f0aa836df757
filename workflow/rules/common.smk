# Globals every rule file shares. The validated study, the grid it implies, and one helper that
# turns a job into its spec (the config values that job reads, a param: growup.study).
# The config file is no job's input; a job reruns when a value it reads changes (its
# `spec` param), never because the file was touched or a comment edited.

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
    Merge,
    SETUPS,
    check_study,
    merge_grid,
    parse_run,
    raw_datasets,
    replay_dataset,
    run_datasets,
    spec_json,
    start_run,
    trained_runs,
)
from growup.train.runs import run_resources

# A --configfile on the command line wins over the default; --config key=value (a nested value
# in YAML form, e.g. --config 'report={method_spread: 0.05}') overrides values like editing the file.
STUDY_CONFIG = (workflow.overwrite_configfiles or ["config/config.yaml"])[-1]
_RAW = deep_merge(resolve_config(STUDY_CONFIG), config_overrides(workflow.config_settings.config or {}))
STUDY = check_study(_RAW, STUDY_CONFIG)  # every value a job would reject, before the DAG
config.clear()
config.update(STUDY.raw)
RELEASED = bool(config.get("released"))  # published checkpoints stand in for training
# evaluation and merging use a GPU whenever the study trains on GPUs (a profile's gpus limit counts them)
EVAL_GPUS = int(any(config["resources"]["gpus"].values()))
THREADS = config["resources"]["threads"]

LANGUAGES = list(STUDY.data.language_codes)
RAW_DATASETS = list(raw_datasets(STUDY))
TRAINED_RUNS = trained_runs(STUDY)
EVALUATED_RUNS = [r for r in TRAINED_RUNS if r != SEED]
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


def _alternatives(names):
    return "|".join(re.escape(n) for n in sorted(set(names), key=len, reverse=True))
