# Evaluation: every saved checkpoint of every base and adaptation run, the clone, and every merge.


rule eval_run:
    input:
        config=STUDY_CONFIG,
        extends=CONFIG_PARENTS,
        final="checkpoints/{run}/final",
    output:
        directory("evals/{run}"),
    log:
        "logs/eval/{run}.log",
    benchmark:
        "logs/benchmarks/eval/{run}.tsv",
    threads: config["resources"]["threads"]
    resources:
        gpus=EVAL_GPUS,
        mem_mb=8000,
        runtime=120,
    shell:
        "growup eval sweep --configfile {input.config} --run-dir checkpoints/{wildcards.run} "
        "--model {wildcards.run} --out-root evals > {log} 2>&1"


rule eval_clone:
    input:
        config=STUDY_CONFIG,
        extends=CONFIG_PARENTS,
        checkpoint="checkpoints/english-1x-cloned/final",
    output:
        directory("evals/english-1x-cloned"),
    log:
        "logs/eval/english-1x-cloned.log",
    benchmark:
        "logs/benchmarks/eval/english-1x-cloned.tsv",
    threads: config["resources"]["threads"]
    resources:
        gpus=EVAL_GPUS,
        mem_mb=8000,
        runtime=60,
    shell:
        "growup eval checkpoint --configfile {input.config} --checkpoint {input.checkpoint} "
        "--model english-1x-cloned --step 0 --out-root evals > {log} 2>&1"


rule eval_merges:
    input:
        config=STUDY_CONFIG,
        extends=CONFIG_PARENTS,
        merges="merges/{setup}",
    output:
        directory("evals/merges/{setup}"),
    log:
        "logs/eval/merges_{setup}.log",
    benchmark:
        "logs/benchmarks/eval/merges_{setup}.tsv",
    threads: config["resources"]["threads"]
    resources:
        gpus=EVAL_GPUS,
        mem_mb=8000,
        runtime=240,
    shell:
        "growup eval merges --configfile {input.config} --setup {wildcards.setup} --merges-root merges "
        "--out-root {output} > {log} 2>&1"


rule tidy:
    input:
        config=STUDY_CONFIG,
        extends=CONFIG_PARENTS,
        evals=EVAL_DIRS,
    output:
        "results/tables/evals.csv",
    log:
        "logs/report/tidy.log",
    benchmark:
        "logs/benchmarks/report/tidy.tsv",
    shell:
        "growup eval tidy --configfile {input.config} --evals evals --out {output} > {log} 2>&1"
