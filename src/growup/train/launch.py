"""How a training job asks a scheduler for GPUs and how it starts its processes.

`growup train` is one accelerate program: one process on CPU or one GPU, one process per GPU under
`accelerate launch` (DDP; FSDP through an accelerate config). The train rule
(`workflow/rules/train.smk`) takes two things from here:

- `slurm_resources`: the resource names `snakemake-executor-plugin-slurm` (2.x) turns into `sbatch`
  options. It reads `gres` (`--gres`, per node) and `nodes` (`--nodes`); the plugin's own `gpus`
  resource is only read by its in-allocation `srun`. A job of at most one node's GPUs runs as one
  task; a larger job is an `mpi` job, whose shell command runs once in the allocation and starts
  one task per node itself (`tasks_per_gpu: 0` keeps the plugin from turning `tasks` into
  `--ntasks-per-gpu`).
- `launch_command`: the command that runs `growup train` with the job's world size.

Limits, stated rather than hidden: every node must hold the same number of GPUs (a job of more
GPUs than one node holds must be a multiple of the GPUs per node, `GROWUP_GPUS_PER_NODE`, default
8); multi-node jobs need `srun` and `scontrol`, so they run in the host environment, not inside
the image under `--sdm apptainer` (which wraps the whole command, `srun` included); nodes reach
one another on `MAIN_PORT` of the first node; an accelerate config for FSDP is read from
accelerate's default location on each node.
"""

from __future__ import annotations

import math
import os
import shlex
from collections.abc import Mapping

from growup.errors import GrowupError

GPUS_PER_NODE_ENV = "GROWUP_GPUS_PER_NODE"
DEFAULT_GPUS_PER_NODE = 8
MAIN_PORT = 29500
TRAIN = "growup train"


def positive_env(environ: Mapping[str, str], name: str) -> int | None:
    """A positive integer setting from the environment; None when it is unset or empty."""
    raw = environ.get(name)
    if raw in (None, ""):
        return None
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise GrowupError(f"{name} must be a positive integer, got {raw!r}")
    return value


def gpus_per_node(environ: Mapping[str, str] | None = None) -> int:
    """GPUs of one cluster node: `GROWUP_GPUS_PER_NODE`, default 8 (an HGX/DGX H100 node)."""
    value = positive_env(os.environ if environ is None else environ, GPUS_PER_NODE_ENV)
    return DEFAULT_GPUS_PER_NODE if value is None else value


def launched_rank(environ: Mapping[str, str] | None = None) -> int:
    """This process's global rank among those `accelerate launch` (torchrun) started: RANK, 0
    for a process started alone."""
    return int((os.environ if environ is None else environ).get("RANK", "0"))


def nodes(gpus: int, per_node: int) -> int:
    """Nodes for a job of `gpus` GPUs, `per_node` each; an uneven split is an error."""
    if gpus <= per_node:
        return 1
    if gpus % per_node:
        raise GrowupError(
            f"a training job of {gpus} GPUs does not fill nodes of {per_node} GPUs evenly: change "
            f"config key resources.gpus or {GPUS_PER_NODE_ENV}"
        )
    return math.ceil(gpus / per_node)


def slurm_resources(gpus: int, per_node: int) -> dict[str, int | str | None]:
    """The SLURM-facing resources of a training job (None = not set, so the plugin sees no key)."""
    unset: dict[str, int | str | None] = {
        "nodes": None,
        "gres": None,
        "mpi": None,
        "tasks": None,
        "tasks_per_gpu": None,
    }
    if gpus <= 0:
        return unset
    n = nodes(gpus, per_node)
    res = {**unset, "nodes": n, "gres": f"gpu:{gpus // n}"}
    if n > 1:
        res.update(mpi="srun", tasks=n, tasks_per_gpu=0)
    return res


def threads_per_process(threads: int, gpus: int, per_node: int) -> int:
    """CPU threads for each training process: the job's threads shared by the processes of a node."""
    procs = max(1, gpus // nodes(gpus, per_node)) if gpus > 1 else 1
    return max(1, threads // procs)


def launch_command(gpus: int, per_node: int, threads: int, mixed_precision: str = "bf16") -> str:
    """The command (to which `growup train`'s arguments are appended) for a job of `gpus` GPUs.

    gpus <= 1: `growup train` itself. One node: `accelerate launch` with one process per GPU.
    Several nodes: `srun` starts one `accelerate launch` per node; each names its node's rank
    (SLURM_NODEID) and the first node of the allocation as the rendezvous host: the address srun
    was started from (SLURM_LAUNCH_NODE_IPADDR: the batch step runs on the first node), else the
    first node's name. Outside a SLURM allocation that command stops at once (exit 2) with what
    to do instead.
    """
    if gpus <= 1:
        return TRAIN
    n = nodes(gpus, per_node)
    accelerate = [
        "accelerate",
        "launch",
        "--multi_gpu",
        f"--num_processes={gpus}",
        f"--num_machines={n}",
        f"--mixed_precision={mixed_precision}",
        "--dynamo_backend=no",
    ]
    module = ["-m", "growup.cli", "train"]
    if n == 1:
        return shlex.join([*accelerate, *module])
    # Runs on every node; single quotes keep the SLURM variables for the task's own shell.
    per_node_script = " ".join(
        [
            "exec",
            shlex.join(accelerate),
            '--machine_rank="$SLURM_NODEID"',
            '--main_process_ip="${SLURM_LAUNCH_NODE_IPADDR:-'
            '$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)}"',
            f"--main_process_port={MAIN_PORT}",
            "--rdzv_backend=static",
            shlex.join(module),
            '"$@"',
        ]
    )
    srun = [
        "srun",
        f"--nodes={n}",
        f"--ntasks={n}",
        "--ntasks-per-node=1",
        f"--gres=gpu:{gpus // n}",
        f"--cpus-per-task={threads}",
        "--mem=0",
        "--kill-on-bad-exit=1",
    ]
    # Outside an allocation srun cannot place the job: stop with the way out instead.
    guard = (
        '[ -n "${SLURM_JOB_ID:-}" ] || { echo "growup: a training job of '
        f"{gpus} GPUs spans {n} nodes and runs only inside a SLURM allocation (--profile profiles/slurm); "
        'on one machine cap it with --resources gpus=N (profiles/local)" >&2; exit 2; }'
    )
    return f"{guard}; {shlex.join(srun)} bash -c {shlex.quote(per_node_script)} growup-train"
