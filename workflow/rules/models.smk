# Model core: the model-size table, the seed model's initialisation, and HyperCloning.
# A checkpoint folder checkpoints/<name>/ holds final/ (and, for trained runs, step-N/ and metrics).


rule model_sizes:
    output:
        "results/tables/model_sizes.md",
    params:
        spec=spec("model count"),
    log:
        "logs/models/model_sizes.log",
    benchmark:
        "logs/benchmarks/models/model_sizes.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=5,
    shell:
        "growup model count --spec {params.spec:q} --format markdown --out {output} > {log} 2>&1"


rule init_seed:
    input:
        tokenizer="data/tokenizer",
    output:
        directory("checkpoints/init"),
    params:
        spec=spec("model init"),
    log:
        "logs/models/init_seed.log",
    benchmark:
        "logs/benchmarks/models/init_seed.tsv"
    resources:
        mem_mb=8000,
        runtime=10,
    shell:
        "growup model init --spec {params.spec:q} --tokenizer {input.tokenizer} --out {output}/final > {log} 2>&1"


rule clone:
    input:
        parent="checkpoints/{parent}",
    output:
        directory(f"checkpoints/{{parent}}{CLONED}"),
    params:
        spec=spec("model clone"),
    log:
        "logs/models/clone_{parent}.log",
    benchmark:
        "logs/benchmarks/models/clone_{parent}.tsv"
    threads: lambda wc: clone_resources(STUDY, f"{wc.parent}{CLONED}")["threads"]
    resources:
        **job_resources(lambda wc: clone_resources(STUDY, f"{wc.parent}{CLONED}")),
    shell:
        "growup model clone --spec {params.spec:q} --checkpoint {input.parent}/final --out {output}/final > {log} 2>&1"
