# Data: fetch every source into data/raw, build replay sets, UniMax budgets, the tokenizer, and
# the packed token shards in data/packed. Names come from the config (languages, train_on).

LANGUAGES = list(config["data"]["languages"])
RAW_DATASETS = ["english-80", "english-20", "code", *LANGUAGES, *[f"replay-{l}" for l in LANGUAGES]]


wildcard_constraints:
    lang="|".join(LANGUAGES),
    dataset="|".join(RAW_DATASETS),


rule fetch_english:
    input:
        config=STUDY_CONFIG,
        extends=CONFIG_PARENTS,
    output:
        directory("data/raw/english-80"),
        directory("data/raw/english-20"),
    log:
        "logs/data/fetch_english.log",
    benchmark:
        "logs/benchmarks/data/fetch_english.tsv",
    resources:
        mem_mb=4000,
        runtime=60,
    shell:
        "growup data fetch --configfile {input.config} --source english --raw-dir data/raw > {log} 2>&1"


rule fetch_code:
    input:
        config=STUDY_CONFIG,
        extends=CONFIG_PARENTS,
    output:
        directory("data/raw/code"),
    log:
        "logs/data/fetch_code.log",
    benchmark:
        "logs/benchmarks/data/fetch_code.tsv",
    resources:
        mem_mb=4000,
        runtime=120,
    shell:
        "growup data fetch --configfile {input.config} --source code --raw-dir data/raw > {log} 2>&1"


rule fetch_language:
    input:
        config=STUDY_CONFIG,
        extends=CONFIG_PARENTS,
    output:
        directory("data/raw/{lang}"),
    log:
        "logs/data/fetch_{lang}.log",
    benchmark:
        "logs/benchmarks/data/fetch_{lang}.tsv",
    resources:
        mem_mb=4000,
        runtime=60,
    shell:
        "growup data fetch --configfile {input.config} --source {wildcards.lang} --raw-dir data/raw > {log} 2>&1"


rule replay:
    input:
        config=STUDY_CONFIG,
        extends=CONFIG_PARENTS,
        raw=["data/raw/english-80", "data/raw/code", *expand("data/raw/{lang}", lang=LANGUAGES)],
    output:
        [directory(f"data/raw/replay-{lang}") for lang in LANGUAGES],
    log:
        "logs/data/replay.log",
    benchmark:
        "logs/benchmarks/data/replay.tsv",
    resources:
        mem_mb=8000,
        runtime=60,
    shell:
        "growup data replay --configfile {input.config} --raw-dir data/raw > {log} 2>&1"


rule unimax:
    input:
        config=STUDY_CONFIG,
        extends=CONFIG_PARENTS,
        raw=expand("data/raw/{lang}", lang=LANGUAGES),
    output:
        "data/unimax.json",
    log:
        "logs/data/unimax.log",
    benchmark:
        "logs/benchmarks/data/unimax.tsv",
    shell:
        "growup data unimax --configfile {input.config} --raw-dir data/raw --out {output} > {log} 2>&1"


rule tokenizer:
    input:
        config=STUDY_CONFIG,
        extends=CONFIG_PARENTS,
        raw=expand("data/raw/{name}", name=config["tokenizer"].get("train_on") or []),
    output:
        directory("data/tokenizer"),
    log:
        "logs/data/tokenizer.log",
    benchmark:
        "logs/benchmarks/data/tokenizer.tsv",
    threads: config["resources"]["threads"]
    resources:
        mem_mb=8000,
        runtime=60,
    shell:
        "growup data tokenizer --configfile {input.config} --raw-dir data/raw --out {output} > {log} 2>&1"


rule pack:
    input:
        config=STUDY_CONFIG,
        extends=CONFIG_PARENTS,
        raw="data/raw/{dataset}",
        tokenizer="data/tokenizer",
    output:
        directory("data/packed/{dataset}"),
    log:
        "logs/data/pack_{dataset}.log",
    benchmark:
        "logs/benchmarks/data/pack_{dataset}.tsv",
    threads: config["resources"]["threads"]
    resources:
        mem_mb=8000,
        runtime=240,
    shell:
        "growup data pack --configfile {input.config} --raw {input.raw} --tokenizer {input.tokenizer} "
        "--out {output} > {log} 2>&1"


rule data:
    input:
        expand("data/packed/{dataset}", dataset=RAW_DATASETS),
        "data/unimax.json",
