# Report: tables, figures and the claims check, each a function of results/tables/evals.csv alone.

FIGURE_NAMES = ["data_efficiency", "english_retention", "merge_heatmaps", "merged_vs_joint"]


rule tables:
    input:
        config=STUDY_CONFIG,
        extends=CONFIG_PARENTS,
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
    log:
        "logs/report/tables.log",
    benchmark:
        "logs/benchmarks/report/tables.tsv",
    shell:
        "growup report tables --configfile {input.config} --evals-csv {input.evals} --out-dir results/tables > {log} 2>&1"


rule figure:
    input:
        config=STUDY_CONFIG,
        extends=CONFIG_PARENTS,
        evals="results/tables/evals.csv",
    output:
        pdf="results/figures/{figure}.pdf",
        png=report(
            "results/figures/{figure}.png",
            caption="../report/figure.rst",
            category="Figures",
            labels={"figure": "{figure}"},
        ),
    wildcard_constraints:
        figure="|".join(FIGURE_NAMES),
    log:
        "logs/report/figure_{figure}.log",
    benchmark:
        "logs/benchmarks/report/figure_{figure}.tsv",
    shell:
        "growup report figure --configfile {input.config} --evals-csv {input.evals} --name {wildcards.figure} "
        "--out-dir results/figures > {log} 2>&1"


rule claims:
    input:
        config=STUDY_CONFIG,
        extends=CONFIG_PARENTS,
        evals="results/tables/evals.csv",
    output:
        report("results/claims.md", caption="../report/claims.rst", category="Claims"),
    log:
        "logs/report/claims.log",
    benchmark:
        "logs/benchmarks/report/claims.tsv",
    shell:
        "growup report claims --configfile {input.config} --evals-csv {input.evals} --out {output} > {log} 2>&1"
