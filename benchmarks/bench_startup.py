"""Start-up of every verb the mini study runs: process start to its first log line after imports.

    GROWUP_HUB_ROOT=../shared/data/hub-mirror HF_HUB_OFFLINE=1 \\
        python benchmarks/bench_startup.py --study /path/to/built/study [--repeat 3]

Copies the built study (a finished `snakemake --cores all` of the mini config) into a temporary
folder, asks Snakemake for every job's command (`snakemake -n -p --forceall`), and runs the first
command of each verb there with `growup -v`, until the verb logs `imports done` (the line
`growup.cli` writes once the verb's handler and every library it loads are imported), then kills
it: the work itself is not timed. Cold: a fresh process per run. Warm: the same commands as
clients of a warm server (growup.warm) that has imported every verb once. Prints a Markdown
table of the median seconds per verb, and the load average before and after.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from growup.warm import protocol
from growup.warm import server as warm

MARK = re.compile(r"growup (.+): imports done")
GROWUP = str(Path(sys.executable).parent / "growup")


def job_commands(study: Path) -> tuple[dict[str, str], Counter]:
    """The first command of each verb in the study's dry run, and how many jobs run each verb."""
    proc = subprocess.run(
        ["snakemake", "-n", "-p", "--forceall", "--cores", "2"], cwd=study, capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise SystemExit(proc.stdout[-3000:] + proc.stderr[-3000:])
    first: dict[str, str] = {}
    counts: Counter = Counter()
    for line in (proc.stdout + proc.stderr).splitlines():
        if not line.startswith("Shell command: growup "):
            continue
        command = line.removeprefix("Shell command: ").split(" > ", 1)[0]
        words = shlex.split(command)
        verb = " ".join(w for w in words[1:3] if not w.startswith("-"))
        counts[verb] += 1
        first.setdefault(verb, command)
    return first, counts


def time_to_mark(command: str, cwd: Path, env: dict[str, str]) -> float:
    """Seconds from spawning `command` (with -v) to its `imports done` line; then it is killed."""
    words = shlex.split(command)
    began = time.perf_counter()
    proc = subprocess.Popen(
        [GROWUP, "-v", *words[1:]],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    try:
        for line in proc.stderr:
            if MARK.search(line):
                return time.perf_counter() - began
        raise SystemExit(f"{command}: ended (status {proc.wait()}) without an 'imports done' line")
    finally:
        proc.kill()
        proc.wait()
        proc.stderr.close()


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", type=Path, required=True, help="a built mini study (not modified)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per verb and mode (median)")
    args = parser.parse_args()
    before = load()
    scratch = Path(tempfile.mkdtemp(prefix="bench-startup-"))
    study = scratch / "study"
    shutil.copytree(args.study, study, symlinks=True, ignore=shutil.ignore_patterns(".snakemake"))
    try:
        commands, counts = job_commands(study)
        env = warm.job_environment()
        launched = warm.start(scratch / "warm.log", environ=env)
        if launched is None:
            raise SystemExit("the warm server did not start: " + (scratch / "warm.log").read_text())
        if not warm.wait_serving(launched):
            raise SystemExit("the warm server does not serve: " + (scratch / "warm.log").read_text())
        warm_env = {**env, protocol.SOCKET_ENV: launched.socket}
        rows = []
        for verb, command in commands.items():
            cold_s = [time_to_mark(command, study, env) for _ in range(args.repeat)]
            warm_s = [time_to_mark(command, study, warm_env) for _ in range(args.repeat)]
            rows.append((verb, counts[verb], statistics.median(cold_s), statistics.median(warm_s)))
            print(f"{verb}: cold {cold_s}, warm {warm_s}", file=sys.stderr, flush=True)
        warm.stop(launched)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print("| verb | jobs | cold (s) | warm (s) |\n|---|--:|--:|--:|")
    for verb, jobs, cold_s, warm_s in rows:
        print(f"| `growup {verb}` | {jobs} | {cold_s:.2f} | {warm_s:.2f} |")
    print(f"\nload average (1, 5, 15 min): {before} before, {load()} after; {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
