"""The `growup` command: run the verb in a worker of the warm server when one is exported and
interchangeable with this process (`growup.warm.protocol.fingerprint`), else in-process (cold).

Warm, this process is a thin stand-in for the worker: it hands over its argv, working folder,
environment, umask, signal dispositions and stdin/stdout/stderr; forwards SIGTERM, SIGINT, SIGHUP,
SIGQUIT, SIGUSR1 and SIGUSR2 to the worker's process group; then exits with the worker's status,
or dies by the worker's signal. If this process dies, the server kills the worker at once. The
job's stderr ends with one usage line (`protocol.usage_line`): the worker's CPU time and peak RSS.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import socket
import sys
from collections.abc import Callable, Sequence
from typing import Any

from growup.io import current_umask
from growup.warm.protocol import (
    FORWARDED,
    SOCKET_ENV,
    SWITCH_ENV,
    TARGET,
    context,
    digest,
    dispositions,
    job_threads,
    read_json,
    send_request,
    source_digest,
    usage_line,
)

WAIT_S = 30.0  # for the server's answer (it listens once its imports are done); then cold


def resolve(target: str) -> Callable[[Sequence[str] | None], Any]:
    """`module:function`, imported now (the cold path pays for the verb's imports here)."""
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def main(target: str = TARGET) -> int:
    """The console entry point: warm when a server takes the job, else cold."""
    path = os.environ.get(SOCKET_ENV)
    if path and os.environ.get(SWITCH_ENV, "1") != "0":
        status = run_warm(path, list(sys.argv), target)
        if status is not None:
            return status
    return resolve(target)(None)


def request(argv: list[str], target: str) -> dict[str, Any]:
    """What the worker needs to be this process."""
    env = dict(os.environ)
    found, sources = context(env, target), source_digest()
    return {
        "argv": argv,
        "cwd": os.getcwd(),
        "env": env,
        "path": list(sys.path),
        "umask": current_umask(),
        "signals": dispositions(),
        "threads": job_threads(env),
        "fingerprint": digest(found, sources),
        "context": found,  # for the server's log, should the fingerprints differ
        "sources": sources,
        "client": os.getpid(),
    }


def run_warm(path: str, argv: list[str], target: str) -> int | None:
    """The worker's exit status, or None when no worker took the job (nothing has run)."""
    if job_threads(os.environ) is None:
        return None
    try:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    except OSError:
        return None
    with sock:
        try:
            sock.settimeout(WAIT_S)
            sock.connect(path)
            send_request(sock, request(argv, target), [0, 1, 2])
            reader = sock.makefile("rb")
            reply = read_json(reader)
        except (OSError, ValueError):
            return None
        except KeyboardInterrupt:  # before any worker started: as the cold CLI does
            print("growup: interrupted", file=sys.stderr)
            return 130
        if not reply or not reply.get("ok"):
            return None
        return follow(sock, reader, int(reply["pid"]), str(reply.get("log") or "its log"))


def follow(sock: socket.socket, reader: Any, pid: int, log: str) -> int:
    """Start the worker, forward signals to it and return (or die with) its status."""

    def forward(signum: int, _frame: Any) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signum)

    for name in FORWARDED:
        signal.signal(getattr(signal, name), forward)
    sock.settimeout(None)
    try:
        sock.sendall(b"go\n")
        result = read_json(reader)
    except (OSError, ValueError):
        result = None
    if result is None:
        print(
            f"growup: the warm server ended while worker {pid} ran this job (see {log}); rerun the "
            f"job, or set {SWITCH_ENV}=0 to run every job in its own process",
            file=sys.stderr,
        )
        return 1
    sys.stdout.flush()
    print(usage_line(result["usage"]), file=sys.stderr, flush=True)
    if result.get("signal"):
        die_by(int(result["signal"]))
    return int(result["exit"])


def die_by(signum: int) -> None:
    """End this process by the signal that ended its worker, so the caller sees the same death."""
    signal.signal(signum, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signum})
    os.kill(os.getpid(), signum)
    raise SystemExit(128 + signum)  # a signal that does not end a process by default
