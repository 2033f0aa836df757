"""Admission: refuse, before anything is submitted, a job that no node of the site could ever run.

SLURM refuses such a job only when it is submitted, by which time the jobs before it are queued or
running. Here every request is checked first, in two ways:

- against the site as declared (`Site.from_env`): GPUs per node (`GROWUP_GPUS_PER_NODE`, default
  8), and where set, nodes (`GROWUP_SITE_NODES`), memory per node in MB (`GROWUP_NODE_MEM_MB`),
  CPUs per node (`GROWUP_NODE_CPUS`) and the time limit in minutes (`GROWUP_MAX_RUNTIME`);
- by SLURM itself, with `sbatch --test-only` (nothing is queued), once per distinct request.

A refusal is one line: the job, the resource, what it asks, what the site has, and the fix.
The workflow runs this on the jobs Snakemake is about to submit (`onstart`, SLURM executor only);
`growup admit` runs it on every training, evaluation and merge job of a config, and on the
largest bundle the profile's `group-components` can form, without a workflow.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from growup.config import Study
from growup.errors import GrowupError
from growup.resources import clone_resources, eval_resources, merge_resources
from growup.study import CLONES, SEED, load_config, merge_grid, trained_runs
from growup.train.launch import GPUS_PER_NODE_ENV, gpus_per_node, positive_env
from growup.train.runs import run_resources, run_slurm_resources

SITE_ENV = {
    "nodes": "GROWUP_SITE_NODES",
    "mem_mb": "GROWUP_NODE_MEM_MB",
    "cpus": "GROWUP_NODE_CPUS",
    "runtime": "GROWUP_MAX_RUNTIME",
}
# Variables naming a service of the submitting machine, for its local jobs only (the warm fork server
# of issue 24: growup.warm's SOCKET_ENV). sbatch exports the whole environment (the SLURM plugin
# passes --export=ALL), so a cluster run drops them before its first submission: no job, on
# another node or on this one, may reach such a server outside its own allocation.
LOCAL_ONLY_ENV = ("GROWUP_WARM_SOCKET",)
MAX_LINES = 10  # refusals printed; the rest are counted
PROBE_WORKERS = 8  # concurrent `sbatch --test-only` calls (each a few ms of slurmctld time)


@dataclass(frozen=True)
class Site:
    """What the cluster's nodes hold, as the user declared it (None: not declared, not checked)."""

    gpus_per_node: int
    nodes: int | None = None
    mem_mb: int | None = None
    cpus: int | None = None
    runtime: int | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Site:
        env = os.environ if environ is None else environ
        return cls(gpus_per_node(env), **{key: positive_env(env, name) for key, name in SITE_ENV.items()})


@dataclass(frozen=True)
class Request:
    """One submission as SLURM sees it: per node, as `sbatch --nodes --gres --mem` ask."""

    job: str  # e.g. "train (run=seed)" or "bundle merges (26 jobs)"
    rule: str  # the rule whose resources to change (`--set-resources RULE:...`)
    nodes: int
    tasks: int
    gpus_per_node: int
    mem_mb: int  # per node
    cpus_per_task: int
    runtime: int  # minutes
    partition: str | None = None
    account: str | None = None

    @property
    def cpus_per_node(self) -> int:
        return self.cpus_per_task * -(-self.tasks // self.nodes)

    def sbatch_options(self) -> list[str]:
        """The sbatch options of this request (those snakemake-executor-plugin-slurm passes)."""
        opts = [f"--nodes={self.nodes}", f"--ntasks={self.tasks}", f"--cpus-per-task={self.cpus_per_task}"]
        opts += [f"--mem={self.mem_mb}", f"--time={self.runtime}"]
        if self.gpus_per_node:
            opts.append(f"--gres=gpu:{self.gpus_per_node}")
        if self.partition:
            opts.append(f"--partition={self.partition}")
        if self.account:
            opts.append(f"--account={self.account}")
        return opts


def _gres_gpus(gres: Any) -> int:
    """GPUs per node of a `gres` string (gpu:N or gpu:TYPE:N); 0 without a GPU."""
    for item in str(gres or "").split(","):
        parts = item.strip().split(":")
        if parts[0] == "gpu":
            return int(parts[-1]) if len(parts) > 1 and parts[-1].isdigit() else 1
    return 0


def request_of(job: str, rule: str, resources: Mapping[str, Any], threads: int) -> Request:
    """The request of a job from its Snakemake resources, read as the SLURM plugin reads them:
    `nodes`, `gres` (per node) or `gpu` (`--gpus`, one node), `mem_mb` (per node), `runtime`,
    `tasks` (mpi jobs), `slurm_partition` and `slurm_account`; threads are --cpus-per-task."""
    nodes = int(resources.get("nodes") or 1)
    gpus = _gres_gpus(resources.get("gres")) or -(-int(resources.get("gpu") or 0) // nodes)
    tasks = int(resources.get("tasks") or 1) if resources.get("mpi") else 1
    return Request(
        job=job,
        rule=rule,
        nodes=nodes,
        tasks=max(tasks, 1),
        gpus_per_node=gpus,
        mem_mb=int(resources.get("mem_mb") or 0),
        cpus_per_task=max(int(threads), 1),
        runtime=int(resources.get("runtime") or 0),
        partition=resources.get("slurm_partition") or None,
        account=resources.get("slurm_account") or None,
    )


# The resources a request can exceed, in the order they are checked: (attribute of Request, what,
# attribute of Site, the environment variable that declares it).
LIMITS = (
    ("nodes", "nodes", "nodes", SITE_ENV["nodes"]),
    ("gpus_per_node", "GPUs per node", "gpus_per_node", GPUS_PER_NODE_ENV),
    ("mem_mb", "MB of memory per node", "mem_mb", SITE_ENV["mem_mb"]),
    ("cpus_per_node", "CPUs per node", "cpus", SITE_ENV["cpus"]),
    ("runtime", "minutes", "runtime", SITE_ENV["runtime"]),
)


def fix(request: Request, resource: str) -> str:
    """How to bring one resource of a request within reach: a config key for training (whose
    resources follow from config), a `--set-resources` override for any other rule."""
    set_res = f"--set-resources {request.rule}:"
    gpus = "config key resources.gpus"
    if request.rule == "train":
        return {
            "nodes": f"give the run fewer GPUs ({gpus}) or nodes more ({GPUS_PER_NODE_ENV})",
            "gpus_per_node": f"set {GPUS_PER_NODE_ENV} to what the nodes hold, or {gpus}",
            "mem_mb": "lower config key resources.mem_mb",
            "cpus_per_node": "lower config key resources.threads",
            "runtime": f"give the run more GPUs ({gpus}) or use a partition with a longer limit",
        }[resource]
    return {
        "nodes": f"lower it with {set_res}nodes=N",
        "gpus_per_node": f"lower it with {set_res}gpu=N",
        "mem_mb": f"lower it with {set_res}mem_mb=N",
        "cpus_per_node": f"lower it with --set-threads {request.rule}=N",
        "runtime": f"use a partition with a longer limit, or {set_res}runtime=N",
    }[resource]


def refusal(request: Request, site: Site) -> str | None:
    """Why the declared site can never run `request` (one line: job, resource, fix), or None."""
    for attr, what, limit_attr, env in LIMITS:
        limit, asked = getattr(site, limit_attr), getattr(request, attr)
        if limit is not None and asked > limit:
            has = f"a limit of {limit} minutes" if attr == "runtime" else f"{limit} {what}"
            return f"job {request.job} asks for {asked} {what}, but the site has {has} ({env}): " + fix(
                request, attr
            )
    return None


def _least(request: Request, attr: str) -> Request:
    """`request` with one resource at its least, to find which one SLURM cannot give."""
    least = {
        "nodes": {"nodes": 1, "tasks": 1},
        "gpus_per_node": {"gpus_per_node": 0},
        "mem_mb": {"mem_mb": 1},
    }
    least |= {"cpus_per_node": {"cpus_per_task": 1, "tasks": request.nodes}, "runtime": {"runtime": 1}}
    return replace(request, **least[attr])


def _ask(sbatch: str, request: Request) -> str | None:
    """SLURM's verdict on `request` (None: admitted), from `sbatch --test-only`: nothing is queued."""
    cmd = [sbatch, "--test-only", *request.sbatch_options(), "--job-name=growup-admission", "--wrap=true"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"sbatch --test-only did not answer ({exc})"
    if proc.returncode == 0:
        return None
    return " ".join((proc.stderr or proc.stdout).split()) or f"exit status {proc.returncode}"


def _slurm_refusal(sbatch: str, request: Request, why: str) -> str:
    """One line for a request SLURM refused: the first resource whose least value SLURM admits."""
    where = f"partition {request.partition}" if request.partition else "the default partition"
    for attr, what, _, _ in LIMITS:
        if (
            getattr(request, attr) > getattr(_least(request, attr), attr)
            and _ask(sbatch, _least(request, attr)) is None
        ):
            asked = getattr(request, attr)
            return (
                f"job {request.job} asks for {asked} {what}, which no node of {where} offers "
                f"(sbatch --test-only: {why}): {fix(request, attr)}"
            )
    return f"job {request.job}: SLURM refuses {' '.join(request.sbatch_options())} ({why})"


def probe(requests: Sequence[Request], sbatch: str = "sbatch") -> list[str]:
    """Refusals by SLURM itself: `sbatch --test-only` once per distinct request (nothing is
    queued), concurrently; one line for the first job of each refused request."""
    distinct: dict[tuple[str, ...], Request] = {}
    for r in requests:
        distinct.setdefault(tuple(r.sbatch_options()), r)
    with ThreadPoolExecutor(PROBE_WORKERS) as pool:
        verdicts = list(pool.map(lambda r: _ask(sbatch, r), distinct.values()))
    return [_slurm_refusal(sbatch, r, why) for r, why in zip(distinct.values(), verdicts, strict=True) if why]


def check(requests: Sequence[Request], site: Site, sbatch: str | None = None) -> None:
    """Raise with every refusal (one line each) by the declared site, then, if those pass and
    `sbatch` is given, by SLURM's `--test-only`; return quietly when every request is admitted."""
    lines = [line for r in requests if (line := refusal(r, site)) is not None]
    if not lines and sbatch:
        lines = probe(requests, sbatch)
    if lines:
        more = [f"... and {len(lines) - MAX_LINES} more refused"] if len(lines) > MAX_LINES else []
        raise GrowupError("\n".join([*lines[:MAX_LINES], *more]))


def study_requests(
    study: Study, site: Site, bundle: int = 1, partition: str | None = None, account: str | None = None
) -> list[Request]:
    """Every training, clone, evaluation and merge job of `study` as the workflow asks for it, and
    the largest bundle of `bundle` merges with their evaluations (the profile's group-components):
    the most memory of any of them and the longest times summed, which bounds every real bundle."""
    extra = {"slurm_partition": partition, "slurm_account": account}
    threads = study.resources.threads
    out = []
    for run in trained_runs(study):
        res = {**run_resources(study, run), **run_slurm_resources(study, run, site.gpus_per_node), **extra}
        out.append(request_of(f"train (run={run})", "train", res, threads))
    for clone in CLONES:
        out.append(request_of(f"clone ({clone})", "clone", {**clone_resources(study, clone), **extra}, 1))
    for run in (r for r in trained_runs(study) if r != SEED):  # the seed run is not evaluated
        out.append(_plain(f"eval_run (run={run})", "eval_run", eval_resources(study, run=run), extra))
    out.append(_plain("eval_clone", "eval_clone", eval_resources(study), extra))
    components = []
    for m in merge_grid(study):
        merge, ev = merge_resources(study, m), eval_resources(study, merge=m)
        out.append(_plain(f"merge ({m.name})", "merge", merge, extra))
        out.append(_plain(f"eval_merge ({m.name})", "eval_merge", ev, extra))
        components.append([merge, ev])
    if components:
        size = min(bundle, len(components))
        jobs = [job for c in components for job in c]
        worst = {
            "mem_mb": max(j["mem_mb"] for j in jobs),
            "gpus": max(j["gpus"] for j in jobs),
            "threads": max(j["threads"] for j in jobs),
            "runtime": sum(sorted((sum(j["runtime"] for j in c) for c in components), reverse=True)[:size]),
        }
        label = f"bundle merges (the largest of {size} merges with their evaluations)"
        out.append(_plain(label, "merge", worst, extra))
    return out


def _plain(job: str, rule: str, res: Mapping[str, int], extra: Mapping[str, Any]) -> Request:
    """A single-node job's request from a `growup.resources` figure (GPUs as the plugin's `gpu`)."""
    return request_of(job, rule, {**res, "gpu": res["gpus"], **extra}, res["threads"])


def snakemake_requests(jobs: Iterable[Any]) -> list[Request]:
    """The requests of the jobs and group jobs Snakemake is about to submit (`workflow.dag`'s)."""
    out = []
    for job in jobs:
        rule = job.name if job.is_group() else job.rule.name
        wildcards = ", ".join(f"{k}={v}" for k, v in ({} if job.is_group() else job.wildcards_dict).items())
        label = f"bundle {rule} ({len(job.jobs)} jobs)" if job.is_group() else f"{rule} ({wildcards})"
        resources = {k: v for k, v in job.resources.items() if isinstance(v, int | str)}
        out.append(request_of(label, rule, resources, job.threads))
    return out


def command(args: argparse.Namespace) -> None:
    """`growup admit`: every job of the config (and the largest merge bundle) against the site."""
    study = load_config(args.configfile)
    site = Site.from_env()
    requests = study_requests(study, site, args.bundle, args.partition, args.account)
    sbatch = None
    if args.test_only:
        sbatch = shutil.which("sbatch")
        if sbatch is None:
            raise GrowupError("--test-only needs sbatch on PATH (a SLURM login node)")
    check(requests, site, sbatch)
    distinct = len({tuple(r.sbatch_options()) for r in requests})
    how = "SLURM (sbatch --test-only)" if sbatch else "the declared site"
    print(f"admitted by {how}: {len(requests)} requests ({distinct} distinct) of study {study.name!r}")


def admit_submissions(dag: Any, environ: Mapping[str, str] | None = None) -> None:
    """Check what a SLURM run of the workflow is about to submit (its needrun jobs, each group
    job once) against the declared site and, with sbatch on PATH, SLURM itself."""
    seen, jobs = set(), []
    for job in dag.needrun_jobs():
        if job.is_local:
            continue
        unit = dag.get_job_group(job) or job
        if id(unit) not in seen:
            seen.add(id(unit))
            jobs.append(unit)
    check(snakemake_requests(jobs), Site.from_env(environ), shutil.which("sbatch"))


def drop_local_services(environ: MutableMapping[str, str] | None = None) -> list[str]:
    """Remove `LOCAL_ONLY_ENV` from the environment jobs are submitted with; the names removed."""
    env = os.environ if environ is None else environ
    return [name for name in LOCAL_ONLY_ENV if env.pop(name, None) is not None]
