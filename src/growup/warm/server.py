"""The warm fork server: imports every verb's modules once, then forks one worker per job.

    python -m growup.warm.server --socket DIR/socket [--parent PID] [--idle-s S] [--log FILE]

One thread and one loop (selectors), so forking is safe: the server imports, fills two caches that
are pure functions of installed files (the config schema, lm-eval's task index), runs no torch op,
initialises no CUDA and enters no OpenMP region, and it refuses to serve (every client then runs
cold) if its imports left a thread running (other than jemalloc's fork-safe background thread) or
initialised CUDA. It starts with every thread count at 1, so no library builds a thread pool at
import; a worker sets the job's count, as a fresh process would read it. Its socket appears only
once the imports are done: a job that starts before then finds none and runs cold, never waits.

A worker: in its own process group, killed with the server (PR_SET_PDEATHSIG), waits until its
client says `go`, then becomes the client (working folder, environment, umask, argv, import path,
signal dispositions, stdin/stdout/stderr, thread count), draws fresh seeds for the generators a
fresh process seeds from the OS (torch's default generator, numpy's global one; Python's `random`
reseeds itself after a fork), runs the verb and exits as Python would
(threads joined, atexit handlers run, streams flushed). The server reports its exit status and
its own rusage to the client; a client that disconnects before its worker ends has the worker's
whole process group killed at once (SIGKILL), so nothing writes after Snakemake saw the job end.

The server exits, killing any worker left, on SIGTERM (the workflow's onsuccess/onerror; while
it still imports, at once), when the process that started it dies, or after `--idle-s` seconds
without a worker.

`start` and `stop` are what the Snakefile calls: a socket in a fresh 0700 folder, the server's
log in the workflow's logs, and the thread and temp-folder variables a local Snakemake job gets.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import importlib
import io
import json
import os
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from growup import cli
from growup.warm.protocol import (
    SOCKET_ENV,
    SWITCH_ENV,
    TARGET,
    THREAD_VARS,
    apply_dispositions,
    context,
    differences,
    digest,
    job_threads,
    recv_request,
    send_json,
    source_digest,
)

IDLE_S = 1800.0  # no worker for this long: exit (a run that lost its parent never keeps one)
POLL_S = 1.0  # how often the loop checks its parent and the idle time
FORK_SAFE_THREADS = ("jemalloc_bg_thd",)  # pyarrow's allocator: re-created after fork by jemalloc
PR_SET_PDEATHSIG = 1
EXTRA = ("threadpoolctl",)  # what a worker uses to set the job's thread count
# pure functions of installed files (fingerprinted), cached per process: computed once here
WARMUPS = ("growup.config:load_schema", "growup.evaluate.harness:task_manager")
TMP_VARS = ("TMPDIR", "TMP", "TEMP", "TEMPDIR")  # Snakemake's default tmpdir resource, per job
MB = 1024.0  # ru_maxrss is in KiB on Linux
__all__ = ["SOCKET_ENV", "SWITCH_ENV", "Launched", "Server", "start", "stop", "wait_serving"]


def preload_items() -> list[str]:
    """Every verb's handler and the libraries it loads when it runs (growup.cli.LOADS)."""
    refs = list(cli.verbs().values())
    return list(dict.fromkeys([*refs, *(item for ref in refs for item in cli.LOADS.get(ref, ())), *EXTRA]))


def fork_safety_problems() -> list[str]:
    """What would make a forked worker differ from a fresh process (empty: safe to fork)."""
    problems = []
    me = os.getpid()
    for tid in os.listdir("/proc/self/task"):
        with contextlib.suppress(OSError):
            name = Path(f"/proc/self/task/{tid}/comm").read_text().strip()
            if int(tid) != me and name not in FORK_SAFE_THREADS:
                problems.append(f"a thread {name!r} runs after the imports")
    if threading.active_count() > 1:
        problems.append(f"Python threads run after the imports: {threading.enumerate()}")
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        problems.append("CUDA was initialised by an import")
    return problems


def set_parent_death_signal(signum: int) -> None:
    """Linux: receive `signum` when the parent (the server) dies."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0)


@dataclass
class Worker:
    pid: int
    conn: socket.socket | None
    go: int | None  # the pipe that starts the worker, until its client says go
    began: float = field(default_factory=time.monotonic)


class Server:
    """The loop: accept a job, fork its worker, report its end; see the module docstring."""

    def __init__(self, path: str, target: str, parent: int, idle_s: float, log: str | None) -> None:
        self.path, self.target, self.parent, self.idle_s, self.log = path, target, parent, idle_s, log
        self.sources = source_digest()
        self.context = json.loads(json.dumps(context(os.environ, target)))  # as a client sends it
        self.fingerprint = digest(self.context, self.sources)
        self.workers: dict[int, Worker] = {}
        self.stopping = False
        self.last_busy = time.monotonic()
        self.selector = selectors.DefaultSelector()
        self.wake_r, self.wake_w = os.pipe()
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)

    def say(self, message: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} growup warm server {os.getpid()}: {message}", flush=True)

    def bind(self) -> None:
        """Listen, once the imports are done: until then a client finds no socket and runs cold,
        so the first jobs of a run never wait for the server."""
        staging = self.path + ".binding"  # the socket appears at its path only once it listens
        self.listener.bind(staging)
        os.chmod(staging, 0o600)
        self.listener.listen(128)
        os.rename(staging, self.path)

    def serve(self, items: Sequence[str], warmups: Sequence[str] = ()) -> int:
        began = time.monotonic()  # importing, SIGTERM ends the server at once (nothing to clean)
        for item in items:
            cli.import_item(item)
        for item in warmups:
            cli.import_item(item)()
        problems = fork_safety_problems()
        if source_digest() != self.sources:
            problems.append("a growup source file changed while the server imported it")
        if problems:
            self.say("not serving (every job runs in its own process): " + "; ".join(problems))
            return 3
        for fd in (self.wake_r, self.wake_w):
            os.set_blocking(fd, False)
        signal.set_wakeup_fd(self.wake_w, warn_on_full_buffer=False)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        for name in ("SIGTERM", "SIGINT", "SIGHUP"):
            signal.signal(getattr(signal, name), self._stop)
        self.bind()
        self.say(f"serving {self.path}: {len(items)} modules imported in {time.monotonic() - began:.1f} s")
        self.selector.register(self.listener, selectors.EVENT_READ, "accept")
        self.selector.register(self.wake_r, selectors.EVENT_READ, "signal")
        try:
            while not self.stopping:
                for key, _ in self.selector.select(POLL_S):
                    if key.data == "accept":
                        self._accept()
                    elif key.data == "signal":
                        with contextlib.suppress(BlockingIOError):
                            os.read(self.wake_r, 4096)
                        self._reap()
                    else:
                        self._client_event(key.data)
                if os.getppid() != self.parent:
                    self.say("the process that started the server is gone: stopping")
                    break
                if not self.workers and time.monotonic() - self.last_busy > self.idle_s:
                    self.say(f"idle for {self.idle_s:.0f} s: stopping")
                    break
        finally:
            self._shutdown()
        return 0

    def _stop(self, *_: Any) -> None:
        self.stopping = True

    def _accept(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        fds: list[int] = []
        try:
            conn.settimeout(10.0)
            _, uid, _ = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
            if uid != os.getuid():
                raise ConnectionError(f"a client of user {uid}")
            request, fds = recv_request(conn)
            reason = self._refusal(request)
            if reason:
                send_json(conn, {"ok": False, "reason": reason})
                raise ConnectionError(reason)
            self._spawn(conn, request, fds)
        except (OSError, ValueError) as exc:
            self.say(f"job not taken: {exc}")
            for fd in fds:
                os.close(fd)
            conn.close()

    def _refusal(self, request: dict[str, Any]) -> str | None:
        if request.get("fingerprint") != self.fingerprint:
            found = differences(self.context, request.get("context") or {})
            if request.get("sources") != self.sources:
                found.append("growup source files")
            return "stale: the client differs from the server in " + ("; ".join(found) or "its fingerprint")
        if request.get("threads") is None or job_threads(request.get("env") or {}) != request["threads"]:
            return "the job's thread variables are not one count"
        return None

    def _spawn(self, conn: socket.socket, request: dict[str, Any], fds: list[int]) -> None:
        go_r, go_w = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the worker
            try:
                os.close(go_w)
                self._close_in_worker()
                become(request, fds, go_r, self.target)
            finally:
                os._exit(70)
        os.close(go_r)
        for fd in fds:
            os.close(fd)
        with contextlib.suppress(OSError):
            os.setpgid(pid, pid)  # also set by the worker: whichever runs first
        worker = Worker(pid, conn, go_w)
        self.workers[pid] = worker
        self.last_busy = time.monotonic()
        try:
            send_json(conn, {"ok": True, "pid": pid, "log": self.log})
        except OSError:
            self._client_gone(worker)
            return
        conn.setblocking(False)
        self.selector.register(conn, selectors.EVENT_READ, worker)
        self.say(f"worker {pid} for client {request.get('client')}: {' '.join(request['argv'][1:3])}")

    def _close_in_worker(self) -> None:
        """A worker keeps nothing of the server's: no socket, pipe, selector or other worker's job."""
        signal.set_wakeup_fd(-1)
        for worker in self.workers.values():
            if worker.conn is not None:
                worker.conn.close()
            if worker.go is not None:
                os.close(worker.go)
        self.workers = {}
        self.selector.close()
        self.listener.close()
        for fd in (self.wake_r, self.wake_w):
            os.close(fd)

    def _client_event(self, worker: Worker) -> None:
        assert worker.conn is not None
        try:
            data = worker.conn.recv(64)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._client_gone(worker)
        elif data.startswith(b"go") and worker.go is not None:
            os.write(worker.go, b"g")
            os.close(worker.go)
            worker.go = None

    def _client_gone(self, worker: Worker) -> None:
        """The client died or hung up: its worker's process group is killed at once."""
        if worker.pid in self.workers:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(worker.pid, signal.SIGKILL)
            self.say(f"client of worker {worker.pid} is gone: worker killed")
        if worker.go is not None:
            os.close(worker.go)
            worker.go = None
        if worker.conn is not None:
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(worker.conn)
            worker.conn.close()
            worker.conn = None

    def _reap(self) -> None:
        while True:
            try:
                pid, status, usage = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            worker = self.workers.pop(pid, None)
            if worker is None:
                continue
            self.last_busy = time.monotonic()
            result = {
                "exit": os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else None,
                "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
                "usage": {
                    "pid": pid,
                    "wall_s": round(time.monotonic() - worker.began, 3),
                    "user_s": round(usage.ru_utime, 3),
                    "sys_s": round(usage.ru_stime, 3),
                    "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
                    "max_rss_mb": round(usage.ru_maxrss / MB, 1),
                },
            }
            self.say(f"worker {pid} ended: exit {result['exit']}, signal {result['signal']}")
            if worker.go is not None:
                os.close(worker.go)
                worker.go = None
            if worker.conn is not None:
                with contextlib.suppress(OSError):
                    worker.conn.setblocking(True)
                    send_json(worker.conn, result)
                with contextlib.suppress(KeyError, ValueError):
                    self.selector.unregister(worker.conn)
                worker.conn.close()

    def _shutdown(self) -> None:
        for worker in list(self.workers.values()):
            self._client_gone(worker)
        self.selector.close()
        self.listener.close()
        with contextlib.suppress(OSError):
            os.unlink(self.path)
        self.say("stopped")


def become(request: dict[str, Any], fds: list[int], go: int, target: str) -> NoReturn:
    """In the forked worker: take on the client's process state, wait for go, run, exit."""
    os.setpgid(0, 0)
    set_parent_death_signal(signal.SIGKILL)
    apply_dispositions(request["signals"])
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    if os.read(go, 1) != b"g":  # the client is gone: nothing has run
        os._exit(1)
    os.close(go)
    for number, fd in enumerate(fds):
        os.dup2(fd, number)
        if fd != number:
            os.close(fd)
    os.chdir(request["cwd"])
    os.umask(int(request["umask"]))
    os.environ.clear()
    os.environ.update(request["env"])
    tempfile.tempdir = None  # gettempdir() reads the job's TMPDIR again
    sys.argv = list(request["argv"])
    sys.path[:] = list(request["path"])
    for stream, fd in ((sys.stdout, 1), (sys.stderr, 2)):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(line_buffering=fd == 2 or os.isatty(fd))
    apply_threads(int(request["threads"]))
    reseed()
    os._exit(finish(run(target, sys.argv[1:])))


def reseed() -> None:
    """Fresh OS-drawn seeds where a fresh process has them, not the server's (shared by workers)."""
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.seed()
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed()


def apply_threads(threads: int) -> None:
    """The job's thread count in every loaded threading library (the server has 1 everywhere)."""
    if threads == 1:
        return
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)
    threadpoolctl = sys.modules.get("threadpoolctl")
    if threadpoolctl is not None:
        threadpoolctl.threadpool_limits(threads)


def run(target: str, args: list[str]) -> int:
    """The target's exit status as Python would give it, printing what Python would print."""
    module, _, name = target.partition(":")
    try:
        code: Any = getattr(importlib.import_module(module), name)(args)
    except SystemExit as exc:
        code = exc.code
    except KeyboardInterrupt:  # Python prints the traceback, then dies by SIGINT
        traceback.print_exc()
        finish(0)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
        return 130
    except BaseException:
        sys.excepthook(*sys.exc_info())
        return 1
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def finish(code: int) -> int:
    """Python's own exit: join non-daemon threads, run atexit handlers, flush the streams."""
    with contextlib.suppress(Exception):
        threading._shutdown()  # type: ignore[attr-defined]
    import atexit

    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
    except (OSError, ValueError):
        code = 120
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.flush()
    return code


# --- for the workflow: start one server for one local Snakemake run, stop it at the end -------


@dataclass
class Launched:
    process: subprocess.Popen
    folder: str
    socket: str


def job_environment(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a local Snakemake job with Snakemake's default resources, thread counts
    at 1: what the server starts with, so that a job's fingerprint matches."""
    env = dict(os.environ if environ is None else environ)
    env.update({name: "1" for name in THREAD_VARS})
    env.update({name: tempfile.gettempdir() for name in TMP_VARS})
    env.pop(SOCKET_ENV, None)
    return env


def start(
    log: str | os.PathLike[str],
    idle_s: float = IDLE_S,
    preload: Sequence[str] | None = None,
    target: str = TARGET,
    environ: dict[str, str] | None = None,
) -> Launched | None:
    """Start a server for this process's local jobs (every verb's imports unless `preload` says
    which), without waiting for it: it listens once it has imported them, and until then, or if
    it never does, jobs run cold. None if it cannot be started at all."""
    folder = tempfile.mkdtemp(prefix="growup-warm-")  # 0700: only this user reaches the socket
    path = os.path.join(folder, "socket")
    command = [sys.executable, "-m", "growup.warm.server", "--socket", path, "--parent", str(os.getpid())]
    command += ["--idle-s", str(idle_s), "--log", str(log), "--target", target]
    command += ["--preload", *preload] if preload is not None else []
    Path(log).parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(log, "w", encoding="utf-8") as out:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=job_environment(environ),
                start_new_session=True,  # the terminal's Ctrl-C goes to the clients, which forward it
            )
    except OSError:
        shutil.rmtree(folder, ignore_errors=True)
        return None
    return Launched(process, folder, path)


def wait_serving(launched: Launched, timeout_s: float = 600.0) -> bool:
    """Wait until the server listens (True) or has ended without serving (False); for tests and
    benchmarks, which want every job warm."""
    deadline = time.monotonic() + timeout_s
    while not os.path.exists(launched.socket):
        if launched.process.poll() is not None or time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def stop(launched: Launched | None, wait_s: float = 10.0) -> None:
    """Stop the server (it kills any worker left) and remove its folder."""
    if launched is None:
        return
    if launched.process.poll() is None:
        launched.process.terminate()
        try:
            launched.process.wait(wait_s)
        except subprocess.TimeoutExpired:
            launched.process.kill()
            launched.process.wait()
    shutil.rmtree(launched.folder, ignore_errors=True)


def parse_args(argv: Iterable[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m growup.warm.server", description=__doc__.splitlines()[0])
    parser.add_argument("--socket", required=True, help="the socket's path, in a folder only you can enter")
    parser.add_argument("--target", default=TARGET, help="module:function a worker runs with argv[1:]")
    parser.add_argument(
        "--preload", nargs="*", help="modules (or module:attribute) to import (default: every verb's)"
    )
    parser.add_argument("--parent", type=int, help="stop when this process is gone (default: the parent)")
    parser.add_argument("--idle-s", type=float, default=IDLE_S, help="stop after this long without a worker")
    parser.add_argument("--log", help="where this server's log goes (named to a client whose job it loses)")
    return parser.parse_args(None if argv is None else list(argv))


def main(argv: Iterable[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.update({name: "1" for name in THREAD_VARS})  # before any library loads: no pools
    server = Server(args.socket, args.target, args.parent or os.getppid(), args.idle_s, args.log)
    if args.preload is None:
        return server.serve(preload_items(), WARMUPS)
    return server.serve(args.preload)


if __name__ == "__main__":
    sys.exit(main())
