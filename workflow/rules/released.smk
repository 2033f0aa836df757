# Released study (config key `released`): every run is the authors' published checkpoint, fetched
# instead of trained; evaluation, merging and the report then run unchanged.

from growup.models.released import released_models

RELEASED_MODELS = released_models(STUDY)  # every needed run has a Hub id, checked before any job


wildcard_constraints:
    run="|".join(TRAINED_RUNS),


ruleorder: fetch_checkpoint > clone


rule fetch_checkpoint:
    input:
        config=STUDY_CONFIG,
        extends=CONFIG_PARENTS,
    output:
        directory("checkpoints/{run}/final"),
    wildcard_constraints:
        run="|".join(RELEASED_MODELS),
    params:
        hub_id=lambda wc: RELEASED_MODELS[wc.run],
    log:
        "logs/models/fetch_{run}.log",
    benchmark:
        "logs/benchmarks/models/fetch_{run}.tsv",
    resources:
        mem_mb=8000,
        runtime=60,
    shell:
        "growup model fetch --configfile {input.config} --run {wildcards.run} "
        "--out checkpoints/{wildcards.run} > {log} 2>&1"
