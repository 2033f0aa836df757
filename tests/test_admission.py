"""Admission: a request no node of the declared site can hold is refused in one line naming the
job, the resource and the fix; every job of the paper fits a site of 8-GPU nodes; the sbatch
options growup checks are those snakemake-executor-plugin-slurm submits. (SLURM's own verdict,
`sbatch --test-only`, is asked in tests/test_cluster.py on a real cluster.)"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from growup.admission import (
    LOCAL_ONLY_ENV,
    Request,
    Site,
    check,
    drop_local_services,
    refusal,
    request_of,
    study_requests,
)
from growup.errors import GrowupError
from growup.study import load_config, merge_grid, trained_runs
from growup.train.runs import run_resources, run_slurm_resources
from helpers import REPO

PAPER = load_config(REPO / "config" / "paper.yaml")
SITE = Site(gpus_per_node=8, nodes=4, mem_mb=512_000, cpus=64, runtime=4 * 24 * 60)


def test_site_limits_come_from_the_environment():
    assert Site.from_env({}) == Site(8)
    env = {"GROWUP_GPUS_PER_NODE": "4", "GROWUP_SITE_NODES": "2", "GROWUP_NODE_MEM_MB": "10000"}
    assert Site.from_env(env) == Site(4, nodes=2, mem_mb=10000)
    with pytest.raises(GrowupError, match="GROWUP_NODE_CPUS must be a positive integer, got 'many'"):
        Site.from_env({"GROWUP_NODE_CPUS": "many"})


def test_a_training_job_is_read_as_the_plugin_reads_it():
    res = {**run_resources(PAPER, "seed"), **run_slurm_resources(PAPER, "seed", 8)}
    r = request_of("train (run=seed)", "train", res, 16)
    assert (r.nodes, r.tasks, r.gpus_per_node, r.mem_mb, r.cpus_per_node) == (4, 4, 8, 128_000, 16)
    one_node = request_of("eval", "eval_run", {"gpu": 1, "mem_mb": 6080, "runtime": 298}, 16)
    assert (one_node.nodes, one_node.gpus_per_node, one_node.cpus_per_task) == (1, 1, 16)


def test_every_paper_job_fits_a_site_of_8_gpu_nodes():
    requests = study_requests(PAPER, SITE, bundle=26)
    kinds = [r.job.split(" ")[0] for r in requests]
    assert kinds.count("train") == len(trained_runs(PAPER)) == 21
    assert kinds.count("merge") == kinds.count("eval_merge") == len(merge_grid(PAPER)) == 390
    assert kinds.count("eval_run") == 20 and kinds.count("bundle") == 1
    check(requests, SITE)  # no refusal
    assert max(r.nodes for r in requests) == 4 and max(r.gpus_per_node for r in requests) == 8


def test_the_largest_bundle_bounds_every_bundle():
    bundle = study_requests(PAPER, SITE, bundle=26)[-1]
    merges = [r for r in study_requests(PAPER, SITE) if r.job.startswith(("merge ", "eval_merge "))]
    assert bundle.mem_mb == max(r.mem_mb for r in merges)  # jobs run one at a time: the largest
    pairs = sorted(
        (a.runtime + b.runtime for a, b in zip(merges[::2], merges[1::2], strict=True)), reverse=True
    )
    assert bundle.runtime == sum(pairs[:26]) and bundle.gpus_per_node == 1


@pytest.mark.parametrize(
    ("site", "job", "words"),
    [
        (
            Site(8, nodes=2),
            "train (run=seed)",
            ["asks for 4 nodes", "2 nodes (GROWUP_SITE_NODES)", "resources.gpus"],
        ),
        (Site(8, mem_mb=100_000), "train (run=seed)", ["128000 MB of memory", "resources.mem_mb"]),
        (Site(8, cpus=8), "train (run=seed)", ["16 CPUs per node", "resources.threads"]),
        (Site(8, runtime=600), "train (run=seed)", ["636 minutes", "600 minutes (GROWUP_MAX_RUNTIME)"]),
    ],
)
def test_a_request_the_site_cannot_hold_is_one_line(site, job, words):
    with pytest.raises(GrowupError) as err:
        check(study_requests(PAPER, site), site)
    first = str(err.value).splitlines()[0]
    assert first.startswith(f"job {job} ") and all(w in first for w in words), first


def test_more_gpus_per_node_than_nodes_hold_names_the_override():
    r = request_of("eval_run (run=isl-2x)", "eval_run", {"gpu": 16, "mem_mb": 1000, "runtime": 10}, 1)
    line = refusal(r, Site(8))
    assert line == (
        "job eval_run (run=isl-2x) asks for 16 GPUs per node, but the site has 8 GPUs per node "
        "(GROWUP_GPUS_PER_NODE): lower it with --set-resources eval_run:gpu=N"
    )
    assert refusal(r, Site(16)) is None


def test_growups_sbatch_options_are_the_plugins():
    """The options growup checks with --test-only are those the SLURM plugin submits."""
    from snakemake_executor_plugin_slurm.submit_string import get_submit_command
    from snakemake_executor_plugin_slurm.utils import set_gres_string

    class Resources(dict):
        __getattr__ = dict.__getitem__

    cases = [
        ({**run_resources(PAPER, "seed"), **run_slurm_resources(PAPER, "seed", 8)}, 16),
        ({**run_resources(PAPER, "isl-1x"), **run_slurm_resources(PAPER, "isl-1x", 16)}, 16),
        ({"mem_mb": 6080, "runtime": 298, "gpu": 1}, 16),
        ({"mem_mb": 1008, "runtime": 10, "gpu": 0}, 1),
    ]
    for res, threads in cases:
        job = SimpleNamespace(
            resources=Resources({k: v for k, v in res.items() if v is not None}), threads=threads
        )
        params = dict(run_uuid="u", slurm_logfile="l", comment_str="c", account="", partition="", workdir="")
        plugin = (get_submit_command(job, params) + set_gres_string(job)).split()
        ours = request_of("j", "r", job.resources, threads)
        assert f"--nodes={ours.nodes}" in plugin or (
            ours.nodes == 1 and not any("--nodes" in o for o in plugin)
        )
        assert f"--cpus-per-task={ours.cpus_per_task}" in plugin
        assert plugin[plugin.index("--mem") + 1] == str(ours.mem_mb) and plugin[
            plugin.index("-t") + 1
        ] == str(ours.runtime)
        gpus = ours.gpus_per_node * ours.nodes
        assert (f"--gres=gpu:{ours.gpus_per_node}" in plugin) or (f"--gpus={gpus}" in plugin) or gpus == 0
        assert f"--ntasks={ours.tasks}" in plugin or (ours.tasks == 1 and "--ntasks" not in " ".join(plugin))


def test_a_request_names_its_options():
    r = Request("j", "r", nodes=2, tasks=2, gpus_per_node=8, mem_mb=128_000, cpus_per_task=16, runtime=60)
    assert r.sbatch_options() == [
        "--nodes=2",
        "--ntasks=2",
        "--cpus-per-task=16",
        "--mem=128000",
        "--time=60",
        "--gres=gpu:8",
    ]


def test_a_cluster_run_drops_the_local_jobs_services():
    env = {"GROWUP_WARM_SOCKET": "/tmp/warm.sock", "HOME": "/root"}
    assert LOCAL_ONLY_ENV == ("GROWUP_WARM_SOCKET",)
    assert drop_local_services(env) == ["GROWUP_WARM_SOCKET"] and env == {"HOME": "/root"}
    assert drop_local_services(env) == []
