# Merging: every merge of the grid (setup x method x subset) is a job and a target of its own,
# e.g. `snakemake merges/2x/ties/isl+swe`. On a cluster, `group: merges` with the profile's
# group-components bundles many small merges (and their evaluations) into one submission.


rule merge:
    input:
        models=lambda wc: [f"checkpoints/{run}" for run in merge_sources(STUDY, merge_of(wc))],
    output:
        config="merges/{setup}/{method}/{subset}.yaml",
        model=directory("merges/{setup}/{method}/{subset}"),
    params:
        spec=spec("merge run", setup="{setup}", method="{method}", subset="{subset}"),
        checkpoints="checkpoints",
        root="merges",
    group:
        "merges"
    log:
        "logs/merge/{setup}/{method}/{subset}.log",
    benchmark:
        "logs/benchmarks/merge/{setup}/{method}/{subset}.tsv"
    threads: THREADS
    resources:
        gpus=EVAL_GPUS,
        mem_mb=16000,
        runtime=20,
    shell:
        "growup merge run --spec {params.spec:q} --setup {wildcards.setup} --method {wildcards.method} "
        "--subset {wildcards.subset} --checkpoints {params.checkpoints} --out-root {params.root} > {log} 2>&1"
