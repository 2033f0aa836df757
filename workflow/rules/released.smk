# Fetched runs (config key `released.models`; growup.study.run_source): a run whose source is a
# Hub id or a local folder is fetched instead of trained; evaluation, merging and the report then
# run unchanged. The released study fetches every run; a study may fetch only its English base.


rule fetch_checkpoint:
    input:
        # a local folder source is an input, so the run is fetched again when the folder changes
        source=lambda wc: [os.path.expanduser(run_source(STUDY, wc.model).location)]
        if run_source(STUDY, wc.model).is_folder
        else [],
    output:
        directory("checkpoints/{model}"),
    wildcard_constraints:
        model=_alternatives(FETCHED),
    params:
        spec=spec("model fetch", run="{model}"),
        source=lambda wc: run_source(STUDY, wc.model).location,
    log:
        "logs/models/fetch_{model}.log",
    benchmark:
        "logs/benchmarks/models/fetch_{model}.tsv"
    resources:
        mem_mb=8000,
        runtime=60,
    shell:
        "growup model fetch --spec {params.spec:q} --run {wildcards.model} --out {output} > {log} 2>&1"
