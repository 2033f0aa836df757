# growup: the "Grow Up and Merge" study (arXiv 2512.10772) as a Snakemake workflow.
#   snakemake --cores all                                 whole study, default (mini) config
#   snakemake --cores all --configfile config/paper.yaml  the paper at full scale
#   snakemake results/figures/data_efficiency.pdf         one target and what it needs
#   snakemake merges/2x/ties/isl+swe                      one merge and what it needs
#   snakemake --config 'report={method_spread: 0.05}'   a value overridden, as if edited
# Rules are thin: each calls one `growup` verb with its job spec (the config values it reads, a
# param: growup.study); all logic lives in src/growup. The grid of runs, evaluations and merges
# comes from the config through growup's own functions (workflow/rules/common.smk).

import os


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


# The image every job runs in under --sdm apptainer (or docker); build it with `make image`,
# push it where your cluster can pull it, and point GROWUP_IMAGE at it.
container: os.environ.get("GROWUP_IMAGE", "docker://growup:0.1.0")


include: "workflow/rules/common.smk"


wildcard_constraints:
    lang=_alternatives(LANGUAGES),
    dataset=_alternatives(RAW_DATASETS),
    run=_alternatives(TRAINED_RUNS),
    parent=_alternatives(MADE_CLONES.values()),  # the runs the study widens (not a fetched clone's)
    setup=_alternatives(SETUPS),
    method=_alternatives({m.method for m in MERGES}),
    subset=_alternatives({m.leaf for m in MERGES}),  # with merging.replicates all: `isl+swe-s1` too
    figure=_alternatives(FIGURE_NAMES),


include: "workflow/rules/models.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/released.smk"
include: "workflow/rules/train.smk"

include: "workflow/rules/evaluate.smk"
include: "workflow/rules/merge.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/warm.smk"


rule all:
    input:
        "results/tables/model_sizes.md",
        rules.tables.output,
        rules.leaderboard.output,
        expand("results/figures/{figure}.{ext}", figure=FIGURE_NAMES, ext=["pdf", "png"]),
        "results/claims.md",
        "results/figures/claims.png",
    default_target: True
