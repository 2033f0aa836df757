# Merging: every merge of the grid (setup x method x subset) is a job and a target of its own,
# e.g. `snakemake merges/2x/ties/isl+swe`. On a cluster, `group: merges` with the profile's
# group-components bundles many small merges (and their evaluations) into one submission.


REFERENCE_CONFIGS = bool(config["merging"].get("reference_configs"))


rule merge:
    input:
        models=lambda wc: [f"checkpoints/{run}" for run in merge_runs(STUDY, merge_of(wc))],
        # the authors' file of this merge, where the config merges exactly their files
        reference=lambda wc: [reference_file(STUDY, merge_of(wc))] if REFERENCE_CONFIGS else [],
    output:
        config="merges/{setup}/{method}/{subset}.yaml",
        model=directory("merges/{setup}/{method}/{subset}"),
    params:
        spec=spec("merge run", setup="{setup}", method="{method}", subset="{subset}"),
        checkpoints="checkpoints",
    group:
        "merges"
    log:
        "logs/merge/{setup}/{method}/{subset}.log",
    benchmark:
        "logs/benchmarks/merge/{setup}/{method}/{subset}.tsv"
    threads: lambda wc: merge_resources(STUDY, merge_of(wc))["threads"]
    resources:
        **job_resources(lambda wc: merge_resources(STUDY, merge_of(wc)), bundled=True),
    shell:
        "growup merge run --spec {params.spec:q} --setup {wildcards.setup} --method {wildcards.method} "
        "--subset {wildcards.subset} --checkpoints {params.checkpoints} --out {output.model} "
        "--yaml {output.config} > {log} 2>&1"
