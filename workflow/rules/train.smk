# Training: every run of the study from its parent's checkpoint; resources from the FLOP accounting.


wildcard_constraints:
    run="|".join(TRAINED_RUNS),
    parent="seed|english-1x",


rule train:
    input:
        config=STUDY_CONFIG,
        start=lambda wc: f"checkpoints/{start_checkpoint(STUDY, wc.run)}",
        data=lambda wc: [f"data/packed/{d}" for d in run_datasets(STUDY, wc.run)],
        budgets="data/unimax.json",
    output:
        directory("checkpoints/{run}/final"),
    log:
        "logs/train/{run}.log",
    threads: config["resources"]["threads"]
    resources:
        gpus=lambda wc: run_resources(STUDY, wc.run)["gpus"],
        mem_mb=lambda wc: run_resources(STUDY, wc.run)["mem_mb"],
        runtime=lambda wc: run_resources(STUDY, wc.run)["runtime"],
    shell:
        "growup train --configfile {input.config} --run {wildcards.run} --init {input.start} "
        "--out checkpoints/{wildcards.run} --data-dir data --threads {threads} > {log} 2>&1"
