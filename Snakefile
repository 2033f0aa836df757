# growup: the "Grow Up and Merge" study (arXiv 2512.10772) as a Snakemake workflow.
#   snakemake --cores all                                 whole study, default (mini) config
#   snakemake --cores all --configfile config/paper.yaml  the paper at full scale
#   snakemake results/figures/data_efficiency.pdf         one target and what it needs
# Rules are thin: each calls one `growup` verb; all logic lives in src/growup. The grid of runs,
# evaluations and merges comes from the config through growup's own functions.

import os

from growup.config import config_chain, load_config
from growup.merge.grid import merge_grid, merge_runs, merging, task_vector_base
from growup.train.runs import run_datasets, run_resources, start_checkpoint, trained_runs


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


# The image every job runs in under --sdm apptainer (or docker); build it with `make image`,
# push it where your cluster can pull it, and point GROWUP_IMAGE at it.
container: os.environ.get("GROWUP_IMAGE", "docker://growup:0.1.0")


# A --configfile on the command line wins over the default; the growup verbs read that file.
# (Override values with --configfile, not --config key=value: the verbs read the file.)
STUDY_CONFIG = (workflow.overwrite_configfiles or ["config/config.yaml"])[-1]
# Validated before any job starts; `extends:` applied, and the rules read the resolved mapping.
if workflow.config_settings.config:  # --config key=value
    raise ValueError(
        "--config key=value overrides are not supported: the growup verbs read the config file; "
        "put the values in a file that says `extends: config.yaml` and pass it with --configfile"
    )
STUDY = load_config(STUDY_CONFIG)
config.clear()
config.update(STUDY.raw)
CONFIG_PARENTS = config_chain(STUDY_CONFIG)  # files `extends:` reads: inputs of every job too
RELEASED = bool(config.get("released"))  # published checkpoints stand in for training
# evaluation and merging use a GPU whenever the study trains on GPUs (a profile's gpus limit counts them)
EVAL_GPUS = int(any(config["resources"]["gpus"].values()))

TRAINED_RUNS = trained_runs(STUDY)
EVALUATED_RUNS = [r for r in TRAINED_RUNS if r != "seed"]
MERGES = merge_grid(STUDY)
MERGE_SETUPS = sorted({m.setup for m in MERGES})
MERGE_INPUTS = {  # models and task-vector bases of every merge (from its config, incl. the authors' files)
    setup: sorted({f"checkpoints/{run}/final" for m in MERGES if m.setup == setup for run in merge_runs(STUDY, m)})
    for setup in MERGE_SETUPS
}
EVAL_DIRS = [
    *[f"evals/{run}" for run in EVALUATED_RUNS],
    "evals/english-1x-cloned",
    *[f"evals/merges/{setup}" for setup in MERGE_SETUPS],
]


include: "workflow/rules/models.smk"
include: "workflow/rules/data.smk"
if RELEASED:

    include: "workflow/rules/released.smk"

else:

    include: "workflow/rules/train.smk"

include: "workflow/rules/evaluate.smk"
include: "workflow/rules/merge.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        "results/tables/model_sizes.md",
        rules.tables.output,
        expand("results/figures/{figure}.{ext}", figure=FIGURE_NAMES, ext=["pdf", "png"]),
        "results/claims.md",
    default_target: True
