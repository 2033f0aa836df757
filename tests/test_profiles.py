"""Snakemake profiles: the SLURM profile plans the paper study with each training job's GPUs, nodes
and the sbatch options the SLURM plugin derives from them; the local profile plans on one machine;
the multi-node launch command starts one `accelerate launch` per node with the right ranks."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from growup.errors import GrowupError
from growup.resources import eval_resources
from growup.study import load_config, trained_runs
from growup.train.launch import gpus_per_node, launch_command, nodes, slurm_resources, threads_per_process
from growup.train.runs import run_resources
from helpers import REPO

BIN = Path(sys.executable).parent
PAPER = load_config(REPO / "config" / "paper.yaml")


def copy_workflow(dest: Path) -> Path:
    for name in ("Snakefile", "workflow", "config", "profiles"):
        src = REPO / name
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, dest / name)
    return dest


def dry_run(cwd: Path, *args: str) -> str:
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    env.pop("GROWUP_GPUS_PER_NODE", None)
    proc = subprocess.run(
        [str(BIN / "snakemake"), "-n", *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=600
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def jobs(output: str, rule: str) -> dict[str, dict]:
    """Planned jobs of one rule by wildcards: their threads, resources (ints where numeric) and shell
    command (Snakemake prints no threads line for a one-thread job)."""
    found, current = {}, None
    for line in output.splitlines():
        if line.startswith("rule "):
            current = {"rule": line[5:].rstrip(":"), "resources": {}, "shell": None, "wildcards": ""}
            current["threads"] = 1
        elif current is None:
            continue
        elif line.strip().startswith("wildcards:"):
            current["wildcards"] = line.split(":", 1)[1].strip()
        elif line.strip().startswith("threads:"):
            current["threads"] = int(line.split(":", 1)[1])
        elif line.strip().startswith("resources:"):
            for item in line.split(":", 1)[1].split(", "):
                key, _, value = item.strip().partition("=")
                current["resources"][key] = int(value) if value.isdigit() else value
        elif line.startswith("Shell command:"):
            current["shell"] = line.split(":", 1)[1].strip()
            if current["rule"] == rule:
                found[current["wildcards"]] = current
            current = None
    return found


@pytest.fixture(scope="module")
def slurm_plan(tmp_path_factory) -> dict[str, dict]:
    work = copy_workflow(tmp_path_factory.mktemp("slurm"))
    # a dry run caps each job's threads at --cores (1 unless given); a SLURM run caps none, so the
    # plan shows what is submitted only with a --cores above any job's threads
    out = dry_run(work, "--profile", "profiles/slurm", "--configfile", "config/paper.yaml", "--cores", "4096")
    return {"train": jobs(out, "train"), "eval_run": jobs(out, "eval_run"), "output": out}


def sbatch(job: dict) -> str:
    """The sbatch command snakemake-executor-plugin-slurm builds for a planned job (its resources and
    threads as the dry run printed them)."""
    from snakemake_executor_plugin_slurm.submit_string import get_submit_command
    from snakemake_executor_plugin_slurm.utils import set_gres_string

    class Resources(dict):
        __getattr__ = dict.__getitem__

    job = SimpleNamespace(resources=Resources(job["resources"]), threads=job["threads"])
    params = dict(
        run_uuid="id",
        slurm_logfile="log",
        comment_str="c",
        account="-A acct",
        partition="-p gpu",
        workdir="/w",
    )
    return get_submit_command(job, params) + set_gres_string(job)


def test_slurm_profile_plans_every_training_job_with_its_gpus(slurm_plan):
    train = slurm_plan["train"]
    assert set(train) == {f"run={run}" for run in trained_runs(PAPER)}
    for wildcards, job in train.items():
        run = wildcards.removeprefix("run=")
        res, want = job["resources"], run_resources(PAPER, run)
        assert res["gpus"] == want["gpus"] and res["runtime"] == want["runtime"], run
        assert res["mem_mb"] == 128000 and res["gres"] == "gpu:8", run
        assert res["nodes"] * 8 == res["gpus"] and res["mpi"] == "srun" and res["tasks"] == res["nodes"], run
    seed = train["run=seed"]
    assert seed["resources"]["gpus"] == 32 and seed["resources"]["nodes"] == 4
    assert train["run=isl-2x"]["resources"]["gpus"] == 16 and train["run=isl-2x"]["resources"]["nodes"] == 2
    assert "srun --nodes=4 --ntasks=4 --ntasks-per-node=1 --gres=gpu:8" in seed["shell"]
    assert "accelerate launch --multi_gpu --num_processes=32 --num_machines=4" in seed["shell"]
    assert '-m growup.cli train "$@"\' growup-train --spec' in seed["shell"]


def test_the_plugin_turns_training_resources_into_sbatch_options(slurm_plan):
    # the threads each job gets are config/paper.yaml's resources.threads, read by growup's loader
    threads = PAPER.resources.threads
    seed = sbatch(slurm_plan["train"]["run=seed"])
    options = ("--nodes=4", "--ntasks=4", "--gres=gpu:8", "--mem 128000", f"--cpus-per-task={threads}")
    for option in options:
        assert option in seed.split(" ") or option in seed, (option, seed)
    assert f"-t {run_resources(PAPER, 'seed')['runtime']}" in seed
    assert "--ntasks-per-gpu" not in seed and "--gpus=" not in seed
    for wildcards, job in slurm_plan["train"].items():
        assert f"--cpus-per-task={threads} " in sbatch(job) + " ", wildcards
    run, job = next(iter(slurm_plan["eval_run"].items()))
    evaluation = sbatch(job)
    assert "--gpus=1" in evaluation and "--nodes" not in evaluation
    want = eval_resources(PAPER, run=run.removeprefix("run="))["threads"]
    assert f"--cpus-per-task={want} " in evaluation + " ", evaluation


def test_local_profile_plans_the_mini_study_on_the_cpu(tmp_path):
    out = dry_run(copy_workflow(tmp_path), "--profile", "profiles/local")
    train = jobs(out, "train")
    assert len(train) == 21
    for job in train.values():
        assert job["resources"]["gpus"] == 0 and "nodes" not in job["resources"]
        assert job["shell"].startswith("growup train --spec")


def test_local_profile_caps_paper_jobs_at_the_machines_gpus(tmp_path):
    work = copy_workflow(tmp_path)
    seed = jobs(dry_run(work, "--profile", "profiles/local", "--configfile", "config/paper.yaml"), "train")
    assert seed["run=seed"]["resources"]["gpus"] == 1
    assert seed["run=seed"]["shell"].startswith("growup train --spec")
    out = dry_run(
        work, "--profile", "profiles/local", "--configfile", "config/paper.yaml", "--resources", "gpus=4"
    )
    seed = jobs(out, "train")["run=seed"]
    assert seed["resources"]["gpus"] == 4
    assert seed["shell"].startswith("accelerate launch --multi_gpu --num_processes=4 --num_machines=1 ")


def test_resources_and_launch_by_world_size():
    assert slurm_resources(0, 8) == dict.fromkeys(("nodes", "gres", "mpi", "tasks", "tasks_per_gpu"))
    assert slurm_resources(4, 8) == {
        "nodes": 1,
        "gres": "gpu:4",
        "mpi": None,
        "tasks": None,
        "tasks_per_gpu": None,
    }
    assert slurm_resources(32, 8) == {
        "nodes": 4,
        "gres": "gpu:8",
        "mpi": "srun",
        "tasks": 4,
        "tasks_per_gpu": 0,
    }
    assert launch_command(0, 8, 16) == launch_command(1, 8, 16) == "growup train"
    assert launch_command(8, 8, 16, "bf16").startswith("accelerate launch --multi_gpu --num_processes=8 ")
    assert nodes(16, 4) == 4 and nodes(3, 8) == 1
    with pytest.raises(GrowupError, match="does not fill nodes of 8 GPUs"):
        nodes(12, 8)
    assert threads_per_process(16, 32, 8) == 2 and threads_per_process(16, 1, 8) == 16
    assert gpus_per_node({}) == 8 and gpus_per_node({"GROWUP_GPUS_PER_NODE": "4"}) == 4
    with pytest.raises(GrowupError, match="GROWUP_GPUS_PER_NODE"):
        gpus_per_node({"GROWUP_GPUS_PER_NODE": "eight"})


FAKE_SRUN = """#!/usr/bin/env bash
# Runs the command once per node, as SLURM would on each, with that node's variables.
n=1
while [[ $1 == -* ]]; do
  case $1 in --nodes=*) n=${1#--nodes=} ;; esac
  shift
done
for ((i = 0; i < n; i++)); do
  SLURM_NODEID=$i SLURM_JOB_NODELIST="gpu[07-10]" "$@" || exit $?
done
"""
FAKE_SCONTROL = (
    '#!/usr/bin/env bash\n[[ "$1 $2 $3" == "show hostnames gpu[07-10]" ]] && printf "gpu%02d\\n" 7 8 9 10\n'
)
FAKE_ACCELERATE = '#!/usr/bin/env bash\necho "$*" >> "$CALLS"\n'


def fake_cluster(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("srun", FAKE_SRUN), ("scontrol", FAKE_SCONTROL), ("accelerate", FAKE_ACCELERATE)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(stat.S_IRWXU)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    return {**env, "PATH": f"{bin_dir}:{os.environ['PATH']}", "CALLS": str(tmp_path / "calls")}


def test_multi_node_launch_starts_one_accelerate_per_node(tmp_path):
    env = fake_cluster(tmp_path)
    command = launch_command(32, 8, 16) + " --configfile 'my config.yaml' --run seed"
    # Snakemake runs shell commands in bash strict mode.
    proc = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", command],
        env={**env, "SLURM_JOB_ID": "42"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    calls = (tmp_path / "calls").read_text().splitlines()
    assert len(calls) == 4
    for rank, call in enumerate(calls):
        assert call.startswith("launch --multi_gpu --num_processes=32 --num_machines=4 ")
        assert f"--machine_rank={rank} --main_process_ip=gpu07 --main_process_port=29500" in call
        assert call.endswith("-m growup.cli train --configfile my config.yaml --run seed")


def test_multi_node_launch_outside_slurm_stops_with_the_way_out(tmp_path):
    env = fake_cluster(tmp_path)
    proc = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", launch_command(16, 8, 16) + " --run isl-2x"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (
        proc.returncode == 2
        and "16 GPUs spans 2 nodes" in proc.stderr
        and "--resources gpus=N" in proc.stderr
    )
    assert not (tmp_path / "calls").exists()


@pytest.mark.slow
def test_growup_train_under_accelerate_launch_matches_one_process(mini_data, tmp_path):
    """The launch path's program (`accelerate launch -m growup.cli train`), two CPU processes (gloo)
    against one process accumulating the same global batch: the same losses and gradient norms."""
    import json

    import yaml

    from growup.models.build import base_config, init_model
    from growup.models.checkpoint import save_checkpoint
    from helpers import tiny_raw

    raw = tiny_raw(global_batch=4, micro_batch=2)
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(raw))
    init = tmp_path / "init"
    model = init_model(base_config(load_config(config).model, 2048), seed=0)
    save_checkpoint(model, init, {"operation": "init", "tokens": 0}, tokenizer_src=mini_data / "tokenizer")
    args = [
        "--configfile",
        str(config),
        "--run",
        "english-1x",
        "--init",
        str(init),
        "--data-dir",
        str(mini_data),
    ]
    args += ["--threads", "1", "--max-steps", "3"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    launch = [str(BIN / "accelerate"), "launch", "--cpu", "--num_processes=2", "--num_machines=1"]
    launch += ["--mixed_precision=no", "--dynamo_backend=no", "-m", "growup.cli", "train"]
    for cmd in (
        [*launch, *args, "--out", str(tmp_path / "ddp")],
        [str(BIN / "growup"), "train", *args, "--out", str(tmp_path / "one")],
    ):
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]

    def metrics(run: str) -> list[dict]:
        return [json.loads(line) for line in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]

    ddp, one = metrics("ddp"), metrics("one")
    assert [m["step"] for m in ddp] == [1, 2, 3] and [m["tokens"] for m in ddp] == [m["tokens"] for m in one]
    for a, b in zip(ddp, one, strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)
        assert a["grad_norm"] == pytest.approx(b["grad_norm"], rel=1e-4)


def grouped_jobs(output: str) -> list[list[dict]]:
    """The dry run's group jobs (`Group job merges` blocks): each member's rule, wildcards and
    resources (ints where numeric), in the order printed."""
    groups: list[list[dict]] = []
    current = None
    for line in output.splitlines():
        if "Group job merges" in line:
            groups.append([])
        elif groups and line.startswith("    rule "):
            current = {"rule": line.strip()[5:].rstrip(":"), "wildcards": "", "resources": {}}
            groups[-1].append(current)
        elif groups and current is not None and line.startswith("        wildcards:"):
            current["wildcards"] = line.split(":", 1)[1].strip()
        elif groups and current is not None and line.startswith("        resources:"):
            for item in line.split(":", 1)[1].split(", "):
                key, _, value = item.strip().partition("=")
                current["resources"][key] = int(value) if value.isdigit() else value
        elif line and not line.startswith(" "):
            current = None
    return groups


def test_merge_and_eval_resources_are_growups_and_bundles_fit_the_admitted_one(slurm_plan):
    """Each planned merge and evaluation asks for what growup.resources derives (so `growup admit`
    checks what is submitted); the profile's bundles are as many as group-components implies, and
    none needs more than the largest bundle `growup admit` checks."""
    from growup.admission import Site, study_requests
    from growup.resources import bundle_resources, eval_resources, merge_resources
    from growup.study import Merge, merge_grid

    groups = grouped_jobs(slurm_plan["output"])
    assert len(groups) == -(-len(merge_grid(PAPER)) // 26) == 15
    largest = study_requests(PAPER, Site(8), bundle=26)[-1]
    for group in groups:
        wanted = []
        for job in group:
            wc = dict(item.split("=") for item in job["wildcards"].split(", "))
            merge = Merge(wc["setup"], wc["method"], tuple(wc["subset"].split("+")))
            want = (
                merge_resources(PAPER, merge)
                if job["rule"] == "merge"
                else eval_resources(PAPER, merge=merge)
            )
            res = job["resources"]
            assert (res["mem_mb"], res["runtime"], res["gpu"], res["bundle_slot"]) == (
                want["mem_mb"],
                want["runtime"],
                want["gpus"],
                1,
            ), job
            wanted.append(want)
        assert len(wanted) <= 2 * 26
        bundle = bundle_resources(wanted)
        assert bundle["mem_mb"] <= largest.mem_mb and bundle["runtime"] <= largest.runtime
    for wildcards, job in slurm_plan["eval_run"].items():
        want = eval_resources(PAPER, run=wildcards.removeprefix("run="))
        assert (job["resources"]["mem_mb"], job["resources"]["runtime"]) == (want["mem_mb"], want["runtime"])
