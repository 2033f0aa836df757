"""What the warm client and server agree on: the fingerprint, the job's thread count, the wire
format and the usage line. Standard library only: the client imports this before anything else.

The fingerprint says when a worker forked from the server would not behave like a fresh process
of the client's: another interpreter, flags or import path, a package installed, upgraded or
removed in a path entry (its `.dist-info`, `.egg-info`, `.pth` and `.egg-link` entries, with their
mtimes; not the folder's own mtime, which any file a job writes into a path entry such as the
working folder would change), any growup source or data file changed since the server
imported it, another environment (every variable except the few a job varies and the worker
applies itself: the shell's `_`, `SHLVL`, `PWD`, and the thread counts), other user, groups,
resource limits, CPU affinity, cgroup or namespaces (a SLURM job step or a container sees other
ones, so it never runs in a server outside its allocation). Any difference: the client runs cold.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import resource
import signal
import socket
import struct
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO

SOCKET_ENV = "GROWUP_WARM_SOCKET"  # set by the workflow for its local jobs (growup.warm.server)
SWITCH_ENV = "GROWUP_WARM"  # "0": never use a warm server; "1": also for a run of few jobs
TARGET = "growup.cli:main"  # what a worker runs: the verb, parsed from argv
VERSION = 1

# the thread counts Snakemake sets per job; the server starts with 1 and a worker applies the job's
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "GOTO_NUM_THREADS")
# set per job too but read by nothing growup loads (numexpr is not installed; vecLib is macOS)
UNREAD = ("VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")
# set per job or per test, read only while a verb runs (growup.hub reads its root at each call),
# never at import: a worker takes them from its client like the rest of the environment
RUN_TIME = ("GROWUP_HUB_ROOT", "PYTEST_CURRENT_TEST")
PER_JOB = frozenset({SOCKET_ENV, SWITCH_ENV, "_", "SHLVL", "PWD", "OLDPWD", *THREAD_VARS, *UNREAD, *RUN_TIME})

FORWARDED = ("SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2")  # client -> worker
MIRRORED = (*FORWARDED, "SIGPIPE", "SIGXFSZ")  # dispositions a worker takes from its client
LIMITS = ("RLIMIT_AS", "RLIMIT_CORE", "RLIMIT_CPU", "RLIMIT_DATA", "RLIMIT_FSIZE", "RLIMIT_MEMLOCK")
LIMITS += ("RLIMIT_NOFILE", "RLIMIT_NPROC", "RLIMIT_STACK")
NAMESPACES = ("cgroup", "ipc", "mnt", "net", "pid", "user", "uts")
SOURCE_SUFFIXES = (".py", ".yaml", ".yml", ".json")
PACKAGE = Path(__file__).resolve().parents[1]  # the growup package this process imports

HEADER = struct.Struct("!Q")  # request length; the request's three descriptors ride on it
USAGE = "growup warm worker:"  # the usage line a client appends to the job's stderr


def job_threads(env: Mapping[str, str]) -> int | None:
    """The job's thread count, when the worker can apply it exactly as a fresh process would read
    it: OMP_NUM_THREADS a positive integer and OpenBLAS, GotoBLAS and MKL unset or equal to it (as
    Snakemake sets them). None otherwise (such a job runs cold)."""
    value = env.get("OMP_NUM_THREADS", "")
    if not value.isdigit() or int(value) < 1:
        return None
    if any(env.get(name, value) != value for name in THREAD_VARS):
        return None
    return int(value)


def source_digest(package: Path = PACKAGE) -> str:
    """sha256 over every source and data file of the growup package (path, then bytes)."""
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*")):
        if path.suffix in SOURCE_SUFFIXES and "__pycache__" not in path.parts and path.is_file():
            digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


INSTALLED_SUFFIXES = (".dist-info", ".egg-info", ".pth", ".egg-link")  # what an install leaves


def installed(path: str) -> list[tuple[str, int]] | None:
    """The install records in one import-path entry, with their mtimes (None: not a folder)."""
    try:
        with os.scandir(path or ".") as entries:
            found = [(e.name, e.stat().st_mtime_ns) for e in entries if e.name.endswith(INSTALLED_SUFFIXES)]
    except OSError:
        return None
    return sorted(found)


def _namespace(name: str) -> int | None:
    try:
        return os.stat(f"/proc/self/ns/{name}").st_ino
    except OSError:
        return None


def _cgroup() -> str:
    with contextlib.suppress(OSError):
        return Path("/proc/self/cgroup").read_text(encoding="ascii")
    return ""


def context(env: Mapping[str, str], target: str) -> dict[str, Any]:
    """Everything a forked worker inherits from the server instead of the client (see module doc)."""
    return {
        "version": VERSION,
        "target": target,
        "executable": sys.executable,
        "python": sys.version,
        "prefix": sys.prefix,
        "flags": list(sys.flags),
        "xoptions": {str(k): str(v) for k, v in sys._xoptions.items()},
        "warnoptions": list(sys.warnoptions),
        "path": [(p, installed(p)) for p in sys.path[1:]],  # [0] is the script's or the server's folder
        "package": str(PACKAGE),
        "env": {k: v for k, v in sorted(env.items()) if k not in PER_JOB},
        "ids": [os.getuid(), os.geteuid(), os.getgid(), sorted(os.getgroups())],
        "limits": [resource.getrlimit(getattr(resource, name)) for name in LIMITS],
        "affinity": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cgroup": _cgroup(),
        "namespaces": [_namespace(name) for name in NAMESPACES],
    }


def fingerprint(env: Mapping[str, str], target: str = TARGET, sources: str | None = None) -> str:
    """One digest of `context` and the growup sources: equal digests, interchangeable processes."""
    return digest(context(env, target), sources or source_digest())


def digest(found: Mapping[str, Any], sources: str) -> str:
    """The fingerprint of a `context` and a `source_digest`."""
    blob = json.dumps(found, sort_keys=True).encode()
    return hashlib.sha256(blob + sources.encode()).hexdigest()


def differences(mine: Mapping[str, Any], theirs: Mapping[str, Any]) -> list[str]:
    """What differs between two `context`s, by name (environment variables and path entries by
    name only, never their values): for the server's log when it turns a job away."""
    found = []
    for key in sorted(set(mine) | set(theirs)):
        a, b = mine.get(key), theirs.get(key)
        if a == b:
            continue
        if key == "env" and isinstance(a, dict) and isinstance(b, dict):
            names = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
            found.append(f"environment variables {', '.join(names)}")
        elif key == "path" and isinstance(a, list) and isinstance(b, list):
            entries = [entry[0] for entry in (*a, *b) if (entry in a) != (entry in b)]
            found.append(f"import path entries {', '.join(dict.fromkeys(map(str, entries)))}")
        else:
            found.append(key)
    return found


def dispositions() -> dict[str, str]:
    """How this process treats each mirrored signal now: `default`, `ignore` or `python` (Python's
    KeyboardInterrupt handler). Read by the client before it installs its forwarding handlers."""
    found = {}
    for name in MIRRORED:
        handler = signal.getsignal(getattr(signal, name))
        if handler == signal.SIG_IGN:
            found[name] = "ignore"
        elif handler is signal.default_int_handler:
            found[name] = "python"
        else:
            found[name] = "default"
    return found


def apply_dispositions(found: Mapping[str, str]) -> None:
    """Give this process (a fresh worker) the client's signal dispositions."""
    for name, how in found.items():
        handler = {"ignore": signal.SIG_IGN, "python": signal.default_int_handler}.get(how, signal.SIG_DFL)
        signal.signal(getattr(signal, name), handler)


def send_request(sock: socket.socket, request: dict[str, Any], fds: list[int]) -> None:
    """The request as length-prefixed JSON, with `fds` (stdin, stdout, stderr) on the header."""
    payload = json.dumps(request).encode()
    socket.send_fds(sock, [HEADER.pack(len(payload))], fds)
    sock.sendall(payload)


def recv_request(sock: socket.socket, limit: int = 1 << 24) -> tuple[dict[str, Any], list[int]]:
    """A request and its descriptors (closed again if the request is cut short or malformed)."""
    head, fds, _, _ = socket.recv_fds(sock, HEADER.size, 3)
    try:
        while len(head) < HEADER.size:
            more = sock.recv(HEADER.size - len(head))
            if not more:
                raise ConnectionError("request cut short")
            head += more
        (size,) = HEADER.unpack(head)
        if size > limit:
            raise ConnectionError(f"request of {size} bytes")
        payload = bytearray()
        while len(payload) < size:
            more = sock.recv(min(1 << 16, size - len(payload)))
            if not more:
                raise ConnectionError("request cut short")
            payload += more
        request = json.loads(payload)
        if not isinstance(request, dict) or len(fds) != 3:
            raise ConnectionError("malformed request")
        return request, fds
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise


def send_json(sock: socket.socket, message: dict[str, Any]) -> None:
    sock.sendall(json.dumps(message).encode() + b"\n")


def read_json(reader: BinaryIO) -> dict[str, Any] | None:
    """The next message, or None at end of stream."""
    line = reader.readline()
    return json.loads(line) if line else None


def usage_line(usage: Mapping[str, Any]) -> str:
    """The line a warm job's log ends with: the worker's own CPU time and peak RSS (Snakemake's
    benchmark file measures the client's process tree, which has none of the work)."""
    return f"{USAGE} {json.dumps(dict(usage), sort_keys=True)}"


def parse_usage(text: str) -> dict[str, Any] | None:
    """The last usage line's figures in a job's log, or None (a cold job has none)."""
    for line in reversed(text.splitlines()):
        if line.startswith(USAGE):
            return json.loads(line[len(USAGE) :])
    return None
