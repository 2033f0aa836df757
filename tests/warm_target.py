"""A stand-in verb for the warm-server tests (tests/test_warm.py): small behaviours a real verb has
(print its process state, exit with a status, handle SIGTERM as training does, keep writing)."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

from growup.io import current_umask


def state() -> dict:
    """What a job sees of its process: the things a worker must take over from its client."""
    return {
        "argv": sys.argv,
        "cwd": os.getcwd(),
        "env": os.environ.get("WARM_TEST_VALUE"),
        "umask": current_umask(),
        "stdin": sys.stdin.read(),
        "sigint": str(signal.getsignal(signal.SIGINT)),
        "sigpipe": str(signal.getsignal(signal.SIGPIPE)),
        "line_buffered": sys.stdout.line_buffering,
    }


def threads() -> dict:
    import threadpoolctl
    import torch

    found = sorted((lib["prefix"], lib["num_threads"]) for lib in threadpoolctl.threadpool_info())
    return {"torch": torch.get_num_threads(), "libraries": found}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    what = args[0]
    if what == "pid":
        print(os.getpid(), os.getppid())
    elif what == "state":
        print(json.dumps(state(), sort_keys=True))
        print("to stderr", file=sys.stderr)
    elif what == "threads":
        print(json.dumps(threads(), sort_keys=True))
    elif what == "exit":
        return int(args[1])
    elif what == "raise":
        raise RuntimeError("a bug")
    elif what == "term":  # as growup train: SIGTERM sets a flag, the loop saves and exits 143
        stop = []
        signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
        print("ready", flush=True)
        while not stop:
            time.sleep(0.01)
        raise SystemExit(143)
    elif what == "sleep":  # SIGTERM not handled: the process dies by it
        print("ready", flush=True)
        time.sleep(60)
    elif what == "write":  # keeps appending to a file until killed
        out = Path(args[1])
        print(os.getpid(), flush=True)
        for i in range(100_000):
            with out.open("a") as fh:
                fh.write(f"{i}\n")
            time.sleep(0.01)
    return 0


if __name__ == "__main__":
    sys.exit(main())
