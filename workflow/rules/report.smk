# Report: tables, figures and the claims check, each a function of results/tables/evals.csv alone.

FIGURE_NAMES = ["data_efficiency", "english_retention", "merge_heatmaps", "merged_vs_joint"]


rule tables:
    input:
        config=STUDY_CONFIG,
        evals="results/tables/evals.csv",
    output:
        multiext("results/tables/final_scores", ".csv", ".md"),
        multiext("results/tables/merges", ".csv", ".md"),
    log:
        "logs/report/tables.log",
    shell:
        "growup report tables --configfile {input.config} --evals-csv {input.evals} --out-dir results/tables > {log} 2>&1"


rule figure:
    input:
        config=STUDY_CONFIG,
        evals="results/tables/evals.csv",
    output:
        multiext("results/figures/{figure}", ".pdf", ".png"),
    wildcard_constraints:
        figure="|".join(FIGURE_NAMES),
    log:
        "logs/report/figure_{figure}.log",
    shell:
        "growup report figure --configfile {input.config} --evals-csv {input.evals} --name {wildcards.figure} "
        "--out-dir results/figures > {log} 2>&1"


rule claims:
    input:
        config=STUDY_CONFIG,
        evals="results/tables/evals.csv",
    output:
        "results/claims.md",
    log:
        "logs/report/claims.log",
    shell:
        "growup report claims --configfile {input.config} --evals-csv {input.evals} --out {output} > {log} 2>&1"
