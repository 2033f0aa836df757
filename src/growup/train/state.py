"""Resumable training state: weights, optimizer, step and RNG states, written atomically.

A rerun of a killed or preempted job loads the last state and continues from its step; since the
data stream is a function of the step, the continuation is identical to an uninterrupted run.
The state holds only tensors and plain Python values (the numpy RNG state as a list), so it loads
with `torch.load(weights_only=True)` and its default allow-list: reading it runs no pickled code.
Its files are recorded in `checksums.sha256` and checked before loading (growup.integrity).
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from growup.errors import GrowupError
from growup.integrity import rebuild_hint, verify_folder, write_checksums
from growup.io import atomic_dir, atomic_write_text

STATE_FILE = "trainer.pt"


def rng_state() -> dict[str, Any]:
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    numpy_state = [kind, keys.tolist(), int(pos), int(has_gauss), float(gauss)]  # no ndarray pickled
    state = {"python": random.getstate(), "numpy": numpy_state, "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_state(
    folder: str | os.PathLike[str], model_state: dict, optimizer_state: dict, step: int, extra: dict
) -> None:
    """Write the full training state to `folder` (replacing the previous one atomically)."""
    with atomic_dir(folder) as tmp:
        torch.save(
            {
                "model": model_state,
                "optimizer": optimizer_state,
                "step": step,
                "rng": rng_state(),
                "extra": extra,
            },
            tmp / STATE_FILE,
        )
        (tmp / "step.json").write_text(json.dumps({"step": step, **extra}, sort_keys=True) + "\n")
        write_checksums(tmp)


def load_state(folder: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The saved state, verified against its checksums, or None when there is none (a fresh run)."""
    path = Path(folder) / STATE_FILE
    if not path.is_file():
        return None
    verify_folder(folder, {"state": (STATE_FILE,)}, what="training state")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling refused (an object outside the allow-list) or unreadable
        raise GrowupError(f"{path} cannot be loaded as plain tensors ({exc}): {rebuild_hint(path)}") from exc
    missing = {"model", "optimizer", "step", "rng"} - (set(state) if isinstance(state, dict) else set())
    if missing:
        raise GrowupError(f"{path} lacks {sorted(missing)}: {rebuild_hint(path)}")
    return state


def truncate_jsonl(path: str | os.PathLike[str], last_step: int) -> None:
    """Drop metric lines past `last_step` (left by a run that died after its last saved state)."""
    path = Path(path)
    if not path.is_file():
        return
    keep = [
        line
        for line in path.read_text(encoding="utf-8").splitlines()
        if json.loads(line)["step"] <= last_step
    ]
    atomic_write_text(path, "".join(f"{line}\n" for line in keep))
