#!/usr/bin/env python3
"""A real SLURM cluster on one machine, from Debian's packages, for growup's tests and for trying
`profiles/slurm` by hand (README, "Running on a SLURM cluster"):

    sudo python3 tests/cluster/minicluster.py start /tmp/growup-slurm     # prints the env to source
    export SLURM_CONF=/tmp/growup-slurm/etc/slurm.conf
    sinfo; snakemake --profile profiles/slurm ...
    sudo python3 tests/cluster/minicluster.py stop /tmp/growup-slurm

Everything lives under the folder it is given: config (SLURM_CONF), munge key and socket, spool,
state, logs and pid files, stand-in GPU devices. It listens on free ports, starts every daemon it
needs (munged, slurmctld, one slurmd per node) and stops only those, by the pids it recorded, and
the job processes they started (their slurmstepd, found by this cluster's SLURM_CONF, and below).
A cluster left by an earlier run, in another folder, is neither reused nor disturbed.

Two partitions: `mini` (default), nodes n1..nN like a small GPU site (4 stand-in GPUs, 10 GB,
1 CPU each by default: two nodes share a 2-core machine), where jobs run; and `paper`, nodes
p1..pM declared like a real site (8 GPUs, 512 GB, 64 CPUs each), for `sbatch --test-only`.
Python standard library only; needs root (slurmd runs jobs as their users), munge and slurm-wlm.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import string
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
PACKAGES = ("slurm-wlm", "munge")
DAEMONS = ("munged", "slurmctld", "slurmd")
STATE_FILE = "cluster.json"
# Client commands get wrappers in <folder>/bin that name this cluster's config: the SLURM plugin's
# job step (snakemake-executor-plugin-slurm-jobstep) drops every SLURM_* variable, SLURM_CONF
# included, before its inner `srun`, which would then look for /etc/slurm/slurm.conf.
CLIENTS = ("srun", "sbatch", "squeue", "scancel", "scontrol", "sinfo", "sacct", "salloc")
GPU_MAJOR = 195  # NVIDIA's character-device major; nothing opens these stand-ins


@dataclass
class Partition:
    name: str
    prefix: str
    nodes: int
    gpus: int
    mem_mb: int
    cpus: int

    def node_names(self) -> list[str]:
        return [f"{self.prefix}{i}" for i in range(1, self.nodes + 1)]


@dataclass
class Layout:
    """What the cluster declares: its partitions, and the two timing knobs the profile relies on."""

    partitions: list[Partition] = field(
        default_factory=lambda: [
            Partition("mini", "n", 2, 4, 10000, 1),
            Partition("paper", "p", 4, 8, 512000, 64),
        ]
    )
    min_job_age: int = 3600  # squeue remembers every job of a test run (plugin: >= 3 x its init wait)
    kill_wait: int = 10


def missing_requirements() -> str | None:
    """Why this machine cannot run the cluster (None when it can)."""
    if os.geteuid() != 0:
        return "the SLURM test cluster needs root (slurmd runs jobs as their users)"
    missing = [
        d for d in DAEMONS if shutil.which(d, path=f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin") is None
    ]
    if missing:
        how = (
            "apt-get install -y slurm-wlm munge" if shutil.which("apt-get") else "install slurm-wlm and munge"
        )
        return f"{', '.join(missing)} not installed ({how})"
    return None


def free_ports(count: int) -> list[int]:
    """`count` distinct TCP ports nothing listens on now (the kernel's pick for port 0)."""
    sockets, ports = [], []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in sockets:
            s.close()
    return ports


def _sbin(name: str) -> str:
    found = shutil.which(name, path=f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin")
    if found is None:
        raise RuntimeError(f"{name} not found: apt-get install -y slurm-wlm munge")
    return found


def _fill(template: str, **values: object) -> str:
    return string.Template((HERE / template).read_text()).substitute(values)


def write_config(root: Path, layout: Layout) -> dict:
    """The config files, munge key and device stand-ins under `root`; returns the cluster record."""
    for sub in ("etc", "munge", "state", "spool", "log", "run", "dev", "bin"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / "munge").chmod(0o700)
    names = [n for p in layout.partitions for n in p.node_names()]
    ctld_port, *node_ports = free_ports(1 + len(names))
    ports = dict(zip(names, node_ports, strict=True))
    most_gpus = max(p.gpus for p in layout.partitions)
    for i in range(most_gpus):
        dev = root / "dev" / f"gpu{i}"
        if not dev.exists():
            os.mknod(dev, 0o666 | 0o020000, os.makedev(GPU_MAJOR, i))  # 0o020000: S_IFCHR
    host = socket.gethostname().split(".")[0]
    node_lines, part_lines, gres_lines = [], [], []
    for p in layout.partitions:
        for name in p.node_names():
            node_lines.append(
                f"NodeName={name} NodeHostname={host} NodeAddr=127.0.0.1 Port={ports[name]} "
                f"CPUs={p.cpus} RealMemory={p.mem_mb} Gres=gpu:{p.gpus} State=UNKNOWN"
            )
            devices = f"{root}/dev/gpu[0-{p.gpus - 1}]" if p.gpus > 1 else f"{root}/dev/gpu0"
            gres_lines.append(f"NodeName={name} Name=gpu File={devices}")
        nodelist = f"{p.prefix}[1-{p.nodes}]" if p.nodes > 1 else f"{p.prefix}1"
        default = "YES" if p is layout.partitions[0] else "NO"
        part_lines.append(
            f"PartitionName={p.name} Nodes={nodelist} Default={default} MaxTime=INFINITE State=UP"
        )
    munge_socket = root / "munge" / "munge.socket"
    (root / "etc" / "slurm.conf").write_text(
        _fill(
            "slurm.conf.in",
            host=host,
            root=root,
            ctld_port=ctld_port,
            munge_socket=munge_socket,
            min_job_age=layout.min_job_age,
            kill_wait=layout.kill_wait,
            node_lines="\n".join(node_lines),
            partition_lines="\n".join(part_lines),
        )
    )
    (root / "etc" / "gres.conf").write_text(_fill("gres.conf.in", gres_lines="\n".join(gres_lines)))
    (root / "etc" / "plugstack.conf").write_text("")
    for client in CLIENTS:
        real = shutil.which(client, path="/usr/bin:/bin:/usr/local/bin")
        if real is not None:
            wrapper = root / "bin" / client
            wrapper.write_text(f'#!/bin/sh\nSLURM_CONF={root}/etc/slurm.conf exec {real} "$@"\n')
            wrapper.chmod(0o755)
    key = root / "munge" / "munge.key"
    if not key.exists():
        key.write_bytes(os.urandom(1024))
    key.chmod(0o600)
    return {
        "root": str(root),
        "slurm_conf": str(root / "etc" / "slurm.conf"),
        "munge_socket": str(munge_socket),
        "bin": str(root / "bin"),
        "layout": asdict(layout),
        "nodes": names,
        "pids": {},
    }


def _env(record: dict) -> dict[str, str]:
    return {**os.environ, "SLURM_CONF": record["slurm_conf"]}


def _read_pid(path: Path, timeout: float = 20) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(FileNotFoundError, ValueError):
            return int(path.read_text().split()[0])
        time.sleep(0.05)
    raise RuntimeError(f"{path} did not appear in {timeout:.0f} s")


def _save(record: dict) -> None:
    path = Path(record["root"]) / STATE_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(tmp, path)


def _run_daemon(record: dict, name: str, cmd: list[str], pid_file: Path) -> None:
    log = Path(record["root"]) / "log" / f"{name}.out"
    with log.open("ab") as out:
        proc = subprocess.run(cmd, env=_env(record), stdout=out, stderr=out, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise RuntimeError(f"{name} did not start (exit {proc.returncode}): see {log}")
    record["pids"][name] = _read_pid(pid_file)
    _save(record)


def start(root: Path, layout: Layout | None = None, timeout: float = 60) -> dict:
    """Configure and start the cluster under `root`; return its record once every node is idle."""
    layout = layout or Layout()
    root = root.resolve()
    if (root / STATE_FILE).exists() and alive(json.loads((root / STATE_FILE).read_text())):
        raise RuntimeError(f"a cluster already runs from {root}: stop it first")
    record = write_config(root, layout)
    _save(record)
    try:
        m = root / "munge"
        _run_daemon(
            record,
            "munged",
            [
                _sbin("munged"),
                "--force",
                f"--socket={record['munge_socket']}",
                f"--key-file={m / 'munge.key'}",
                f"--pid-file={m / 'munged.pid'}",
                f"--log-file={m / 'munged.log'}",
                f"--seed-file={m / 'munged.seed'}",
            ],
            m / "munged.pid",
        )
        conf = record["slurm_conf"]
        _run_daemon(
            record, "slurmctld", [_sbin("slurmctld"), "-f", conf, "-i"], root / "run" / "slurmctld.pid"
        )
        for node in record["nodes"]:
            (root / "spool" / node).mkdir(parents=True, exist_ok=True)
            _run_daemon(
                record,
                f"slurmd-{node}",
                [_sbin("slurmd"), "-f", conf, "-N", node],
                root / "run" / f"slurmd-{node}.pid",
            )
        wait_idle(record, timeout)
    except BaseException:
        stop(root)
        raise
    return record


def wait_idle(record: dict, timeout: float) -> None:
    """Wait until every node reports idle (slurmd registered with its GPUs and memory)."""
    deadline = time.monotonic() + timeout
    states = ""
    while time.monotonic() < deadline:
        proc = subprocess.run(
            ["sinfo", "--noheader", "--Node", "--format=%N %t"],
            env=_env(record),
            capture_output=True,
            text=True,
        )
        states = proc.stdout.strip()
        lines = [line.split() for line in states.splitlines() if line.strip()]
        if proc.returncode == 0 and len(lines) >= len(record["nodes"]) and all(s == "idle" for _, s in lines):
            return
        time.sleep(0.5)
    raise RuntimeError(f"nodes not idle after {timeout:.0f} s: {states!r} (logs in {record['root']}/log)")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child is dead for our purposes
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z":
            return False
    return True


def _ours(pid: int, record: dict) -> bool:
    """Whether `pid` is still a process this cluster started (its pid may have been reused)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False
    conf = record["slurm_conf"].encode()
    return record["root"] in cmdline or f"SLURM_CONF={conf.decode()}".encode() in environ


def alive(record: dict) -> bool:
    return any(pid_alive(pid) and _ours(pid, record) for pid in record.get("pids", {}).values())


def _processes() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, command line) of every process now."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                found[int(entry.name)] = (
                    ppid,
                    (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(),
                )
    return found


def _descendants(record: dict) -> list[int]:
    """The job processes this cluster's daemons started: its slurmstepd and slurmscriptd processes
    (they carry this cluster's SLURM_CONF) and everything under them. A shell that merely exported
    this SLURM_CONF is not one of them."""
    procs, conf = _processes(), f"SLURM_CONF={record['slurm_conf']}".encode()
    roots = []
    for pid, (_, cmd) in procs.items():
        if cmd.startswith(("slurmstepd", "slurmctld: slurmscriptd")):
            with contextlib.suppress(OSError):
                if conf in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
                    roots.append(pid)
    found, frontier = set(roots), list(roots)
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, (ppid, _) in procs.items() if ppid == parent and pid not in found]
        found.update(children)
        frontier.extend(children)
    return sorted(found - {os.getpid()})


def _terminate(pids: list[int], timeout: float) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(pid_alive(p) for p in pids):
        time.sleep(0.1)
    for pid in pids:
        if pid_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def stop(root: Path, timeout: float = 15) -> None:
    """Cancel this cluster's jobs, then stop the daemons it started (by recorded pid) and the job
    processes under them. Other clusters and unrelated processes are left alone."""
    root = root.resolve()
    path = root / STATE_FILE
    if not path.exists():
        return
    record = json.loads(path.read_text())
    pids = {
        name: pid for name, pid in record.get("pids", {}).items() if pid_alive(pid) and _ours(pid, record)
    }
    if "slurmctld" in pids:
        subprocess.run(
            ["scancel", "--full", "--quiet", "--user", str(os.getuid())], env=_env(record), timeout=30
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            q = subprocess.run(
                ["squeue", "--noheader", "--states=R,CG,PD"], env=_env(record), capture_output=True, text=True
            )
            if q.returncode != 0 or not q.stdout.strip():
                break
            time.sleep(0.5)
    _terminate([pid for name, pid in pids.items() if name.startswith("slurmd-")], timeout)
    _terminate([pids[n] for n in ("slurmctld", "munged") if n in pids], timeout)
    # what is left under them: job processes of a job that outlived scancel, slurmctld's helper
    _terminate([p for p in _descendants(record) if p not in pids.values()], timeout)
    record["pids"] = {}
    _save(record)


def env_lines(record: dict) -> str:
    return f"export SLURM_CONF={record['slurm_conf']} PATH={record['root']}/bin:$PATH\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    st = sub.add_parser("start", help="configure and start a cluster in FOLDER; print the env to use it")
    st.add_argument("folder", type=Path)
    st.add_argument("--nodes", type=int, default=2, help="nodes of partition mini (default 2)")
    st.add_argument("--gpus", type=int, default=4, help="stand-in GPUs per mini node (default 4)")
    st.add_argument("--mem-mb", type=int, default=10000, help="memory per mini node, MB (default 10000)")
    st.add_argument(
        "--cpus", type=int, default=1, help="CPUs per mini node (default 1: two nodes share a 2-core machine)"
    )
    st.add_argument("--paper-nodes", type=int, default=4, help="nodes of partition paper (default 4)")
    st.add_argument("--paper-gpus", type=int, default=8, help="GPUs per paper node (default 8)")
    st.add_argument(
        "--paper-mem-mb", type=int, default=512000, help="memory per paper node, MB (default 512000)"
    )
    st.add_argument("--paper-cpus", type=int, default=64, help="CPUs per paper node (default 64)")
    sp = sub.add_parser("stop", help="stop the cluster started in FOLDER (only its own daemons)")
    sp.add_argument("folder", type=Path)
    args = parser.parse_args(argv)
    if args.command == "stop":
        stop(args.folder)
        return 0
    why = missing_requirements()
    if why:
        print(f"minicluster: {why}", file=sys.stderr)
        return 2
    layout = Layout(
        [
            Partition("mini", "n", args.nodes, args.gpus, args.mem_mb, args.cpus),
            Partition("paper", "p", args.paper_nodes, args.paper_gpus, args.paper_mem_mb, args.paper_cpus),
        ]
    )
    record = start(args.folder, layout)
    print(env_lines(record), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
