"""Peak tensor memory of a piece of work, on CUDA and on CPU.

CUDA has allocator statistics (`torch.cuda.max_memory_allocated`). CPU has none, and Python-level
tools do not see it (tracemalloc tracks Python objects, not torch's C++ allocations; the process's
peak RSS never goes down, so it cannot compare two runs in one process). What does see every CPU
tensor allocation is torch's profiler with `profile_memory=True`: c10's CPU allocator reports each
allocation and free, and the trace's `[memory]` events carry its running "Total Allocated". Its
maximum over the window, counted from the window's start, is the peak of the tensor bytes the work
added on top of what already existed.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch


def peak_bytes(fn: Callable[[], Any], device: str | torch.device = "cpu") -> int:
    """The peak of tensor memory that `fn()` allocates beyond what was allocated before it ran."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - base
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    with tempfile.TemporaryDirectory() as tmp:
        trace = Path(tmp) / "trace.json"
        prof.export_chrome_trace(str(trace))
        events = json.loads(trace.read_text())["traceEvents"]
    totals = [
        e["args"]["Total Allocated"]
        for e in events
        if e.get("name") == "[memory]" and e["args"].get("Device Type") == 0  # 0: CPU
    ]
    return max([0, *totals])
