"""Wall time of the whole mini study through Snakemake, per stage.

    GROWUP_HUB_ROOT=../shared/data/hub-mirror HF_HUB_OFFLINE=1 python benchmarks/bench_study.py [--cores 2]
    python benchmarks/bench_study.py --summarize DIR     # only summarise a finished run in DIR

Copies the repository's tracked files into a temporary folder (so edits made meanwhile do not
leak in), runs `snakemake --cores N` there with that copy's `src` first on PYTHONPATH, and prints
the end-to-end wall time and, per stage, the number of jobs and the sum of their wall and CPU
seconds, read from the `benchmark:` file every rule writes under logs/benchmarks/<stage>/.
The stage sums exceed the end-to-end time when jobs run in parallel.

A job run by a warm worker (growup.warm) does its work in a process forked from the warm server,
outside the process tree Snakemake measures: its CPU time and peak RSS come from the usage line
that ends its log (logs/<stage>/<job>.log beside logs/benchmarks/<stage>/<job>.tsv); its wall
time is the benchmark file's (the client waits for the worker).
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from growup.warm.protocol import parse_usage  # noqa: E402
from helpers import copy_repo  # noqa: E402

STAGES = ["data", "models", "train", "eval", "merge", "report"]


def worker_usage(workdir: Path, tsv: Path) -> dict | None:
    """The warm worker's usage line in the job's log, if a worker ran the job."""
    log = workdir / "logs" / tsv.relative_to(workdir / "logs" / "benchmarks").with_suffix(".log")
    return parse_usage(log.read_text(errors="replace")) if log.is_file() else None


def stage_table(workdir: Path) -> list[dict[str, float | int | str]]:
    """Per stage: jobs, warm jobs, summed job wall seconds, summed CPU seconds, peak RSS (MB)."""
    rows = []
    for stage in STAGES:
        jobs = warm = wall = cpu = rss = 0.0
        for tsv in sorted((workdir / "logs" / "benchmarks" / stage).rglob("*.tsv")):
            usage = worker_usage(workdir, tsv)
            with tsv.open() as fh:
                for rec in csv.DictReader(fh, delimiter="\t"):
                    jobs += 1
                    wall += float(rec["s"])
                    if usage is not None:
                        warm += 1
                        cpu += usage["cpu_s"]
                        rss = max(rss, usage["max_rss_mb"])
                    else:
                        cpu += float(rec.get("cpu_time") or 0)
                        rss = max(rss, float(rec.get("max_rss") or 0))
        rows.append(
            {
                "stage": stage,
                "jobs": int(jobs),
                "warm": int(warm),
                "wall_s": wall,
                "cpu_s": cpu,
                "max_rss_mb": rss,
            }
        )
    return rows


def markdown(rows: list[dict], total_s: float | None, cores: int | None) -> str:
    lines = [
        "| stage | jobs | warm | job wall (s) | job CPU (s) | peak RSS (MB) |",
        "|---|--:|--:|--:|--:|--:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['stage']} | {r['jobs']} | {r['warm']} | {r['wall_s']:.0f} | {r['cpu_s']:.0f} "
            f"| {r['max_rss_mb']:.0f} |"
        )
    jobs, warm, wall, cpu = (sum(r[k] for r in rows) for k in ("jobs", "warm", "wall_s", "cpu_s"))
    lines.append(f"| **all** | {jobs} | {warm} | {wall:.0f} | {cpu:.0f} | |")
    if total_s is not None:
        lines.append(f"\nEnd to end on {cores} cores: **{total_s / 60:.1f} min** ({total_s:.0f} s).")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", type=int, default=os.cpu_count())
    parser.add_argument("--summarize", type=Path, help="summarise a finished run in this folder")
    parser.add_argument("--keep", action="store_true", help="keep the run folder")
    args = parser.parse_args()
    if args.summarize:
        print(markdown(stage_table(args.summarize), None, None))
        return 0
    workdir = copy_repo(Path(tempfile.mkdtemp(prefix="bench-study-")))
    path = os.pathsep.join(filter(None, [str(workdir / "src"), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path}  # no empty entry: that would put each job's folder on the path
    start = time.perf_counter()
    proc = subprocess.run(["snakemake", "--cores", str(args.cores), "-q"], cwd=workdir, env=env)
    total = time.perf_counter() - start
    print(markdown(stage_table(workdir), total, args.cores))
    print(f"run folder: {workdir}" if args.keep else "")
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
