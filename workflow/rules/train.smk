# Training: every run of the study from its parent's checkpoint; resources from the FLOP accounting.
# GPU jobs: `gres`/`nodes` (and `mpi`/`tasks` past one node) are what the SLURM executor plugin turns
# into sbatch options (growup.train.launch says how and where the limits are); `gpus` is the world
# size. A --resources gpus=N limit (profiles/local) scales `gpus` down, and the launch follows it.
# A run trains in state/<run>/ (resumable; not an output, so Snakemake never deletes it) and is
# published whole into checkpoints/<run>/ when it finishes (growup.train.publish).

from growup.train.launch import gpus_per_node, launch_command, threads_per_process

GPUS_PER_NODE = gpus_per_node()  # GROWUP_GPUS_PER_NODE, default 8


rule train:
    wildcard_constraints:
        run=_alternatives(TRAINING),  # a fetched run is rule fetch_checkpoint's
    input:
        start=lambda wc: f"checkpoints/{start_run(STUDY, wc.run)}",
        data=lambda wc: [f"data/packed/{d}" for d in run_datasets(STUDY, wc.run)],
        budgets=run_budgets,
    output:
        directory("checkpoints/{run}"),
    log:
        "logs/train/{run}.log",
    benchmark:
        "logs/benchmarks/train/{run}.tsv"
    threads: THREADS
    resources:
        gpus=lambda wc: run_resources(STUDY, wc.run)["gpus"],
        mem_mb=lambda wc: run_resources(STUDY, wc.run)["mem_mb"],
        runtime=lambda wc: run_resources(STUDY, wc.run)["runtime"],
        nodes=lambda wc: run_slurm_resources(STUDY, wc.run, GPUS_PER_NODE)["nodes"],
        gres=lambda wc: run_slurm_resources(STUDY, wc.run, GPUS_PER_NODE)["gres"],
        mpi=lambda wc: run_slurm_resources(STUDY, wc.run, GPUS_PER_NODE)["mpi"],
        tasks=lambda wc: run_slurm_resources(STUDY, wc.run, GPUS_PER_NODE)["tasks"],
        tasks_per_gpu=lambda wc: run_slurm_resources(STUDY, wc.run, GPUS_PER_NODE)["tasks_per_gpu"],
    params:
        spec=spec("train", run="{run}"),
        work="state/{run}",
        data="data",
        launch=lambda wc, resources, threads: launch_command(
            resources.gpus, GPUS_PER_NODE, threads, STUDY.training.mixed_precision
        ),
        threads=lambda wc, resources, threads: threads_per_process(threads, resources.gpus, GPUS_PER_NODE),
    shell:
        "{params.launch} --spec {params.spec:q} --run {wildcards.run} --init {input.start}/final "
        "--work {params.work} --out {output} --data-dir {params.data} --threads {params.threads} > {log} 2>&1"
