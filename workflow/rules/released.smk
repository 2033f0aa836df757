# Released study (config key `released`): every run is the authors' published checkpoint, fetched
# instead of trained; evaluation, merging and the report then run unchanged.

from growup.models.released import released_models

RELEASED_MODELS = released_models(STUDY)  # every needed run has a Hub id, checked before any job


ruleorder: fetch_checkpoint > clone


rule fetch_checkpoint:
    output:
        directory("checkpoints/{model}"),
    wildcard_constraints:
        model=_alternatives(RELEASED_MODELS),
    params:
        spec=spec("model fetch", run="{model}"),
        hub_id=lambda wc: RELEASED_MODELS[wc.model],
    log:
        "logs/models/fetch_{model}.log",
    benchmark:
        "logs/benchmarks/models/fetch_{model}.tsv"
    resources:
        mem_mb=8000,
        runtime=60,
    shell:
        "growup model fetch --spec {params.spec:q} --run {wildcards.model} --out {output} > {log} 2>&1"
