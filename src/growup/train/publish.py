"""A workflow training job trains in a work folder and publishes the finished run in one step.

The work folder (`state/<run>` in the workflow) holds the resumable state, the step-N
checkpoints and metrics while the run trains, so a job that dies resumes where it stopped:
Snakemake never deletes it, because it is not a declared output. The declared output
`checkpoints/<run>` appears only when the run is complete (`publish`), so no half-written run is
ever trusted. A work folder left by a run with another spec is cleared, never resumed.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from growup.io import atomic_dir, atomic_write_text
from growup.train.loop import FINAL, METRICS

log = logging.getLogger(__name__)
SPEC = "spec.json"


def prepare_work(work: str | os.PathLike[str], spec: str) -> Path:
    """The work folder for a job with this spec: resumed if it was left by the same spec,
    emptied if by another (a changed value must not resume stale state)."""
    work = Path(work)
    stamp = work / SPEC
    if work.exists() and not (stamp.is_file() and stamp.read_text(encoding="utf-8") == spec):
        log.warning("%s was left by a run with another spec: starting afresh", work)
        shutil.rmtree(work)
    if not stamp.is_file():
        atomic_write_text(stamp, spec)
    return work


def publish(work: str | os.PathLike[str], out: str | os.PathLike[str]) -> Path:
    """Move the finished run's step-N checkpoints, final/ and metrics from `work` into `out`
    (atomically: `out` appears whole or not at all), then delete `work`. Returns out/final."""
    work, out = Path(work), Path(out)
    with atomic_dir(out) as tmp:
        for item in sorted(work.iterdir()):
            if item.name.startswith("step-") or item.name in (FINAL, METRICS):
                os.replace(item, tmp / item.name)
    shutil.rmtree(work)
    return out / FINAL
