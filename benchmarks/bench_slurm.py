"""Wall time of the cluster slice of the mini study (tests/cluster/slice.py) run locally and on the
two-node test cluster through profiles/slurm, from scratch, one after the other: locally with
warm workers (as `snakemake` runs by default) and with every job cold (GROWUP_WARM=0, as a cluster
job starts), then on the cluster.

    sudo GROWUP_HUB_ROOT=../shared/data/hub-mirror HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_slurm.py

Needs root, slurm-wlm and munge (tests/cluster/minicluster.py starts and stops the cluster in a
temporary folder). Each run works in a fresh copy of the repository's tracked files; the machine's
load average is printed beside each time, since other work on the machine changes both.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from cluster import minicluster  # noqa: E402
from cluster.slice import TARGETS  # noqa: E402

from growup.warm.protocol import SWITCH_ENV  # noqa: E402
from helpers import copy_repo  # noqa: E402

BIN = Path(sys.executable).parent


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, str]:
    """Seconds `cmd` took in `cwd`, and the 1-minute load average when it ended."""
    start = time.monotonic()
    with (cwd / "bench.log").open("w") as log:
        proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
    seconds = time.monotonic() - start
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd[:3])} failed: see {cwd / 'bench.log'}")
    return seconds, f"{os.getloadavg()[0]:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the two work folders")
    args = parser.parse_args()
    why = minicluster.missing_requirements()
    if why:
        raise SystemExit(f"bench_slurm: {why}")
    work = Path(tempfile.mkdtemp(prefix="growup-bench-slurm-"))
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    snakemake = str(BIN / "snakemake")
    local = copy_repo(work / "local")
    local_s, local_load = timed([snakemake, "--profile", "profiles/local", *TARGETS], local, env)
    # cluster jobs start cold (no warm server reaches them): the like-for-like local run does too
    cold = copy_repo(work / "local-cold")
    cold_env = {**env, SWITCH_ENV: "0"}
    cold_s, cold_load = timed([snakemake, "--profile", "profiles/local", *TARGETS], cold, cold_env)
    root = work / "cluster-state"
    record = minicluster.start(root)
    try:
        cluster_env = {**env, "SLURM_CONF": record["slurm_conf"], "PATH": f"{record['bin']}:{env['PATH']}"}
        remote = copy_repo(work / "slurm")
        slurm_s, slurm_load = timed([snakemake, "--profile", "profiles/slurm", *TARGETS], remote, cluster_env)
    finally:
        minicluster.stop(root)
    print("| run | wall | load average at the end |\n|---|--:|--:|")
    print(f"| local (`profiles/local`, 2 cores) | {local_s / 60:.1f} min ({local_s:.0f} s) | {local_load} |")
    print(f"| local, cold jobs ({SWITCH_ENV}=0) | {cold_s / 60:.1f} min ({cold_s:.0f} s) | {cold_load} |")
    print(f"| SLURM (`profiles/slurm`, 2 nodes) | {slurm_s / 60:.1f} min ({slurm_s:.0f} s) | {slurm_load} |")
    print(f"\nSLURM / local cold: {slurm_s / cold_s:.2f}x; SLURM / local warm: {slurm_s / local_s:.2f}x")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
