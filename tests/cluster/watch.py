"""Watching and interrupting jobs of the test cluster: a job's SLURM id by its rule and wildcards,
a job process by its command line, and the moment a folder gains an entry (inotify, so a test can
stop a writer while its temporary folder exists)."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import json
import os
import select
import struct
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

IN_CREATE = 0x00000100
_EVENT = struct.Struct("iIII")  # struct inotify_event: wd, mask, cookie, len (then the name)


def wait_for(what: str, test: Callable[[], object], timeout: float, poll: float = 0.05) -> object:
    """`test()`'s first truthy value within `timeout` seconds, else an AssertionError naming `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = test()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def slurm_job_id(env: dict[str, str], rule: str, wildcards: str = "") -> str | None:
    """The SLURM id of the queued or running job of `rule` (the plugin's comment names the rule and
    its wildcards), or None."""
    comment = f"rule_{rule}_wildcards_{wildcards}" if wildcards else f"rule_{rule}"
    out = subprocess.run(
        ["squeue", "--noheader", "--states=PD,R", "--format=%i|%k"], env=env, capture_output=True, text=True
    ).stdout
    ids = [line.split("|")[0] for line in out.splitlines() if line.split("|")[-1] == comment]
    return ids[0] if ids else None


def find_process(*words: str) -> int | None:
    """The pid of a process whose command line holds every one of `words` as arguments."""
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        with contextlib.suppress(OSError):
            args = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
            if all(w in args for w in words):
                return int(entry.name)
    return None


def saved_step(work: Path) -> int | None:
    """The step of the training state in a work folder (state/<run>/state/step.json), if any."""
    with contextlib.suppress(OSError, ValueError, KeyError):
        return int(json.loads((work / "state" / "step.json").read_text())["step"])
    return None


class Created:
    """inotify on one folder: the names of entries created in it, as they appear."""

    def __init__(self, folder: Path) -> None:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        self.fd = libc.inotify_init1(os.O_CLOEXEC)
        if self.fd < 0 or libc.inotify_add_watch(self.fd, str(folder).encode(), IN_CREATE) < 0:
            raise OSError(ctypes.get_errno(), f"inotify on {folder}")
        self.buffer = b""

    def next(self, timeout: float) -> str | None:
        """The next created name, or None after `timeout` seconds without one."""
        while len(self.buffer) < _EVENT.size:
            if not select.select([self.fd], [], [], timeout)[0]:
                return None
            self.buffer += os.read(self.fd, 65536)
        _, _, _, length = _EVENT.unpack_from(self.buffer)
        name = self.buffer[_EVENT.size : _EVENT.size + length].rstrip(b"\0").decode()
        self.buffer = self.buffer[_EVENT.size + length :]
        return name

    def close(self) -> None:
        os.close(self.fd)
