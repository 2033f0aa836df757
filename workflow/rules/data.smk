# Data: fetch every source into data/raw, build replay sets, UniMax budgets, the tokenizer, and
# the packed token shards in data/packed. Names come from the config (languages, train_on).


rule fetch_english:
    output:
        [directory(f"data/raw/{name}") for name in ENGLISH_DATASETS],
    params:
        spec=spec("data fetch", source="english"),
        raw=lambda wc, output: os.path.dirname(output[0]),
    log:
        "logs/data/fetch_english.log",
    benchmark:
        "logs/benchmarks/data/fetch_english.tsv"
    resources:
        mem_mb=4000,
        runtime=60,
    shell:
        "growup data fetch --spec {params.spec:q} --source english --raw-dir {params.raw} > {log} 2>&1"


rule fetch_code:
    output:
        directory(f"data/raw/{CODE}"),
    params:
        spec=spec("data fetch", source="code"),
        raw=lambda wc, output: os.path.dirname(output[0]),
    log:
        "logs/data/fetch_code.log",
    benchmark:
        "logs/benchmarks/data/fetch_code.tsv"
    resources:
        mem_mb=4000,
        runtime=120,
    shell:
        "growup data fetch --spec {params.spec:q} --source code --raw-dir {params.raw} > {log} 2>&1"


rule fetch_language:
    output:
        directory("data/raw/{lang}"),
    params:
        spec=spec("data fetch", source="{lang}"),
        raw=lambda wc, output: os.path.dirname(output[0]),
    log:
        "logs/data/fetch_{lang}.log",
    benchmark:
        "logs/benchmarks/data/fetch_{lang}.tsv"
    resources:
        mem_mb=4000,
        runtime=60,
    shell:
        "growup data fetch --spec {params.spec:q} --source {wildcards.lang} --raw-dir {params.raw} > {log} 2>&1"


rule replay:
    input:
        raw=[f"data/raw/{ENGLISH_BASE}", f"data/raw/{CODE}", *expand("data/raw/{lang}", lang=LANGUAGES)],
    output:
        [directory(f"data/raw/{replay_dataset(lang)}") for lang in LANGUAGES],
    params:
        spec=spec("data replay"),
        raw=lambda wc, input: os.path.dirname(input.raw[0]),
    log:
        "logs/data/replay.log",
    benchmark:
        "logs/benchmarks/data/replay.tsv"
    resources:
        mem_mb=8000,
        runtime=60,
    shell:
        "growup data replay --spec {params.spec:q} --raw-dir {params.raw} > {log} 2>&1"


rule unimax:
    input:
        raw=expand("data/raw/{lang}", lang=LANGUAGES),
    output:
        "data/unimax.json",
    params:
        spec=spec("data unimax"),
        raw=lambda wc, input: os.path.dirname(input.raw[0]),
    log:
        "logs/data/unimax.log",
    benchmark:
        "logs/benchmarks/data/unimax.tsv"
    shell:
        "growup data unimax --spec {params.spec:q} --raw-dir {params.raw} --out {output} > {log} 2>&1"


# The study's tokenizer: a fetched English base brings its own (growup.study.tokenizer_run), else
# the config's (trained on the mini corpus or from the Hub). Two definitions, one per case, so the
# rule's shell command, which Snakemake's provenance compares, is unchanged for a study that
# fetches no base: an existing build does not rerun for the run sources.
if TOKENIZER_RUN:

    rule tokenizer:
        input:
            base=f"checkpoints/{TOKENIZER_RUN}",
        output:
            directory("data/tokenizer"),
        params:
            spec=spec("data tokenizer"),
        log:
            "logs/data/tokenizer.log",
        benchmark:
            "logs/benchmarks/data/tokenizer.tsv"
        threads: THREADS
        resources:
            mem_mb=8000,
            runtime=60,
        shell:
            "growup data tokenizer --spec {params.spec:q} --checkpoint {input.base}/final --out {output} > {log} 2>&1"

else:

    rule tokenizer:
        input:
            raw=expand("data/raw/{name}", name=config["tokenizer"].get("train_on") or []),
        output:
            directory("data/tokenizer"),
        params:
            spec=spec("data tokenizer"),
            raw=lambda wc, input: os.path.dirname(input.raw[0]) if input.raw else "data/raw",
        log:
            "logs/data/tokenizer.log",
        benchmark:
            "logs/benchmarks/data/tokenizer.tsv"
        threads: THREADS
        resources:
            mem_mb=8000,
            runtime=60,
        shell:
            "growup data tokenizer --spec {params.spec:q} --raw-dir {params.raw} --out {output} > {log} 2>&1"


rule pack:
    input:
        raw="data/raw/{dataset}",
        tokenizer="data/tokenizer",
    output:
        directory("data/packed/{dataset}"),
    params:
        spec=spec("data pack"),
    log:
        "logs/data/pack_{dataset}.log",
    benchmark:
        "logs/benchmarks/data/pack_{dataset}.tsv"
    threads: THREADS
    resources:
        mem_mb=8000,
        runtime=240,
    shell:
        "growup data pack --spec {params.spec:q} --raw {input.raw} --tokenizer {input.tokenizer} "
        "--out {output} > {log} 2>&1"


rule data:
    input:
        expand("data/packed/{dataset}", dataset=RAW_DATASETS),
        "data/unimax.json",
