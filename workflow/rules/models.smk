# Model core: the model-size table, the seed model's initialisation, and HyperCloning.


rule model_sizes:
    input:
        config=STUDY_CONFIG,
        extends=CONFIG_PARENTS,
    output:
        "results/tables/model_sizes.md",
    log:
        "logs/models/model_sizes.log",
    benchmark:
        "logs/benchmarks/models/model_sizes.tsv",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=5,
    shell:
        "growup model count --configfile {input.config} --format markdown --out {output} > {log} 2>&1"


rule init_seed:
    input:
        config=STUDY_CONFIG,
        extends=CONFIG_PARENTS,
        tokenizer="data/tokenizer",
    output:
        directory("checkpoints/seed/init"),
    log:
        "logs/models/init_seed.log",
    benchmark:
        "logs/benchmarks/models/init_seed.tsv",
    resources:
        mem_mb=8000,
        runtime=10,
    shell:
        "growup model init --configfile {input.config} --tokenizer {input.tokenizer} --out {output} > {log} 2>&1"


rule clone:
    input:
        config=STUDY_CONFIG,
        extends=CONFIG_PARENTS,
        parent="checkpoints/{parent}/final",
    output:
        directory("checkpoints/{parent}-cloned/final"),
    log:
        "logs/models/clone_{parent}.log",
    benchmark:
        "logs/benchmarks/models/clone_{parent}.tsv",
    resources:
        mem_mb=16000,
        runtime=20,
    shell:
        "growup model clone --configfile {input.config} --checkpoint {input.parent} --out {output} > {log} 2>&1"
