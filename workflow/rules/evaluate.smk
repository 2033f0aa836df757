# Evaluation: every saved checkpoint of every base and adaptation run, the clone, and every merge
# (one job per merge, grouped with the merge into few submissions on a cluster).

EVAL_DIRS = [
    *[f"evals/{run}" for run in EVALUATED_RUNS],
    f"evals/{ENGLISH_CLONE}",
    *[f"evals/merges/{m.setup}/{m.method}/{m.leaf}" for m in MERGES],
]


rule eval_run:
    input:
        run="checkpoints/{run}",
    output:
        directory("evals/{run}"),
    params:
        spec=spec("eval run", run="{run}"),
    log:
        "logs/eval/{run}.log",
    benchmark:
        "logs/benchmarks/eval/{run}.tsv"
    threads: lambda wc: eval_resources(STUDY, run=wc.run)["threads"]
    resources:
        **job_resources(lambda wc: eval_resources(STUDY, run=wc.run)),
    shell:
        "growup eval sweep --spec {params.spec:q} --run-dir {input.run} "
        "--model {wildcards.run} --out {output} > {log} 2>&1"


rule eval_clone:
    input:
        checkpoint=f"checkpoints/{ENGLISH_CLONE}",
    output:
        directory(f"evals/{ENGLISH_CLONE}"),
    params:
        spec=spec("eval checkpoint"),
        model=ENGLISH_CLONE,
    log:
        f"logs/eval/{ENGLISH_CLONE}.log",
    benchmark:
        f"logs/benchmarks/eval/{ENGLISH_CLONE}.tsv"
    threads: lambda wc: eval_resources(STUDY)["threads"]
    resources:
        **job_resources(lambda wc: eval_resources(STUDY)),
    shell:
        "growup eval checkpoint --spec {params.spec:q} --checkpoint {input.checkpoint}/final "
        "--model {params.model} --step 0 --out {output} > {log} 2>&1"


rule eval_merge:
    input:
        merge="merges/{setup}/{method}/{subset}",
    output:
        directory("evals/merges/{setup}/{method}/{subset}"),
    params:
        spec=spec("eval merge", setup="{setup}", method="{method}", subset="{subset}"),
    group:
        "merges"
    log:
        "logs/eval/merges/{setup}/{method}/{subset}.log",
    benchmark:
        "logs/benchmarks/eval/merges/{setup}/{method}/{subset}.tsv"
    threads: lambda wc: eval_resources(STUDY, merge=merge_of(wc))["threads"]
    resources:
        **job_resources(lambda wc: eval_resources(STUDY, merge=merge_of(wc)), bundled=True),
    shell:
        "growup eval merge --spec {params.spec:q} --setup {wildcards.setup} --method {wildcards.method} "
        "--subset {wildcards.subset} --merge {input.merge} --out {output} > {log} 2>&1"


rule tidy:
    input:
        evals=EVAL_DIRS,
    output:
        evals="results/tables/evals.csv",
        pairs="results/tables/pairs.jsonl",
    params:
        spec=spec("eval tidy"),
    log:
        "logs/report/tidy.log",
    benchmark:
        "logs/benchmarks/report/tidy.tsv"
    shell:
        "growup eval tidy --spec {params.spec:q} --evals {input.evals} --out {output.evals} "
        "--pairs {output.pairs} > {log} 2>&1"
