"""Seconds per merge for the mini study's models: in-process (mergekit's Python API, as growup runs
the grid) against one `growup merge rerun` process per merge (as a user rerunning a single YAML).

    python benchmarks/bench_merge.py

Builds english and two "language" checkpoints per setup (1x: 0.59M, 2x: 1.97M, perturbed copies,
no data needed), then runs the five study methods for both setups each way and prints the means.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]

from growup.merge import grid  # noqa: E402
from growup.merge.run import run_merge  # noqa: E402
from growup.models.build import base_config, init_model  # noqa: E402
from growup.models.checkpoint import save_checkpoint  # noqa: E402
from growup.models.cloning import hyperclone  # noqa: E402
from growup.study import load_config  # noqa: E402

LANGS = ("ekk", "fao")


def build(study, root: Path) -> None:
    base = init_model(base_config(study.model, study.tokenizer.vocab_size), seed=0)
    save_checkpoint(base, root / "english-1x" / "final", {})
    save_checkpoint(hyperclone(base, 2), root / "english-2x" / "final", {})
    for i, lang in enumerate(LANGS):
        torch.manual_seed(i)
        model = init_model(base_config(study.model, study.tokenizer.vocab_size), seed=0)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p), alpha=0.01)
        save_checkpoint(model, root / f"{lang}-1x" / "final", {})
        save_checkpoint(hyperclone(model, 2), root / f"{lang}-2x" / "final", {})


def main() -> None:
    study = load_config(REPO / "config" / "config.yaml")
    tmp = Path(tempfile.mkdtemp(prefix="bench-merge-"))
    build(study, tmp / "ckpt")
    merges = [grid.Merge(setup, method, LANGS) for setup in ("1x", "2x") for method in study.merging.methods]
    inproc, proc = [], []
    for i, merge in enumerate(merges):
        config = grid.merge_config(study, merge, tmp / "ckpt")
        start = time.perf_counter()
        run_merge(config, tmp / "in" / str(i), 0, tmp / f"{i}.yaml")
        inproc.append(time.perf_counter() - start)
        start = time.perf_counter()
        argv = grid.rerun_argv(tmp / f"{i}.yaml", tmp / "out" / str(i), 0)
        subprocess.run(argv, check=True, capture_output=True)
        proc.append(time.perf_counter() - start)
        print(
            f"{merge.setup:3} {merge.method:16} in-process {inproc[-1]:6.2f} s"
            f"   growup merge rerun {proc[-1]:6.2f} s"
        )
    mean_in, mean_proc = sum(inproc) / len(inproc), sum(proc) / len(proc)
    print(
        f"mean seconds per merge: in-process {mean_in:.2f}, rerun process {mean_proc:.2f}, "
        f"ratio {mean_proc / mean_in:.1f}x"
    )


if __name__ == "__main__":
    main()
