# growup: the "Grow Up and Merge" study (arXiv 2512.10772) as a Snakemake workflow.
#   snakemake --cores all                               whole study, default (mini) config
#   snakemake --cores all --configfile config/paper.yaml  the paper at full scale
#   snakemake <path of one artifact>                    just that target and what it needs
# Rules are thin: each calls one `growup` verb; all logic lives in src/growup.

import os

from growup.config import validate_config


configfile: "config/config.yaml"


# The image every job runs in under --sdm apptainer (or docker); build it with `make image`,
# push it where your cluster can pull it, and point GROWUP_IMAGE at it.
container: os.environ.get("GROWUP_IMAGE", "docker://growup:0.1.0")


# A --configfile on the command line wins over the default; the growup verbs read that file.
# (Override values with --configfile, not --config key=value: the verbs read the file.)
STUDY_CONFIG = (workflow.overwrite_configfiles or ["config/config.yaml"])[-1]
validate_config(config, source=str(STUDY_CONFIG))


include: "workflow/rules/models.smk"
include: "workflow/rules/data.smk"


rule all:
    input:
        "results/tables/model_sizes.md",
        rules.data.input,
    default_target: True
