# Report: tables, figures and the claims check (with its figure), each a function of
# results/tables/evals.csv alone (and, for the claims and the leaderboard, the per-pair verdicts
# beside it); the leaderboard figure draws the leaderboard table.


rule tables:
    input:
        evals="results/tables/evals.csv",
    output:
        report(
            multiext("results/tables/final_scores", ".csv", ".md"),
            caption="../report/tables.rst",
            category="Tables",
        ),
        report(
            multiext("results/tables/merges", ".csv", ".md"),
            caption="../report/tables.rst",
            category="Tables",
        ),
    params:
        spec=spec("report tables"),
        out=lambda wc, output: os.path.dirname(output[0]),
    log:
        "logs/report/tables.log",
    benchmark:
        "logs/benchmarks/report/tables.tsv"
    shell:
        "growup report tables --spec {params.spec:q} --evals-csv {input.evals} --out-dir {params.out} > {log} 2>&1"


rule leaderboard:
    input:
        evals="results/tables/evals.csv",
        pairs="results/tables/pairs.jsonl",
    output:
        report(
            multiext(f"results/tables/{LEADERBOARD}", ".csv", ".md"),
            caption="../report/leaderboard.rst",
            category="Tables",
        ),
    params:
        spec=spec("report leaderboard"),
        out=lambda wc, output: os.path.dirname(output[0]),
    log:
        "logs/report/leaderboard.log",
    benchmark:
        "logs/benchmarks/report/leaderboard.tsv"
    shell:
        "growup report leaderboard --spec {params.spec:q} --evals-csv {input.evals} --pairs {input.pairs} "
        "--out-dir {params.out} > {log} 2>&1"


rule figure:
    input:
        evals="results/tables/evals.csv",
        # the leaderboard figure draws the leaderboard table
        leaderboard=lambda wc: [f"results/tables/{LEADERBOARD}.csv"] if wc.figure == LEADERBOARD else [],
    output:
        pdf="results/figures/{figure}.pdf",
        png=report(
            "results/figures/{figure}.png",
            caption="../report/figure.rst",
            category="Figures",
            labels={"figure": "{figure}"},
        ),
    params:
        spec=spec("report figure", name="{figure}"),
        out=lambda wc, output: os.path.dirname(output[0]),
        leaderboard=lambda wc, input: f"--leaderboard {input.leaderboard}" if input.leaderboard else "",
    log:
        "logs/report/figure_{figure}.log",
    benchmark:
        "logs/benchmarks/report/figure_{figure}.tsv"
    shell:
        "growup report figure --spec {params.spec:q} --evals-csv {input.evals} --name {wildcards.figure} "
        "--out-dir {params.out} {params.leaderboard} > {log} 2>&1"


rule claims:
    input:
        evals="results/tables/evals.csv",
        pairs="results/tables/pairs.jsonl",
    output:
        claims=report("results/claims.md", caption="../report/claims.rst", category="Claims"),
        pdf="results/figures/claims.pdf",
        png=report("results/figures/claims.png", caption="../report/claims.rst", category="Claims"),
    params:
        spec=spec("report claims"),
        figures=lambda wc, output: os.path.dirname(output.pdf),
    log:
        "logs/report/claims.log",
    benchmark:
        "logs/benchmarks/report/claims.tsv"
    shell:
        "growup report claims --spec {params.spec:q} --evals-csv {input.evals} --pairs {input.pairs} "
        "--out {output.claims} --figure-dir {params.figures} > {log} 2>&1"
