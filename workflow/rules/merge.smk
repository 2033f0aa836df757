# Merging: every merge of the grid (methods x subsets) of one setup in one mergekit process.


rule merge_setup:
    input:
        config=STUDY_CONFIG,
        extends=CONFIG_PARENTS,
        models=lambda wc: MERGE_INPUTS[wc.setup],
    output:
        directory("merges/{setup}"),
    log:
        "logs/merge/{setup}.log",
    benchmark:
        "logs/benchmarks/merge/{setup}.tsv",
    threads: config["resources"]["threads"]
    resources:
        gpus=EVAL_GPUS,
        mem_mb=16000,
        runtime=240,
    shell:
        "growup merge run --configfile {input.config} --setup {wildcards.setup} --method all --subset all "
        "--checkpoints checkpoints --out-root merges > {log} 2>&1"
