# Model core: parameter and FLOP accounting of the study's 1x model and its clone.


rule model_sizes:
    input:
        STUDY_CONFIG,
    output:
        "results/tables/model_sizes.md",
    log:
        "logs/model_sizes.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=5,
    shell:
        "growup model count --configfile {input} --format markdown --out {output} > {log} 2>&1"
