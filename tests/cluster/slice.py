"""The slice of the mini study that the cluster tests and benchmarks/bench_slurm.py run: Icelandic's
three setups and two merges of 1x models, with all they need (every fetch, the replay sets, UniMax,
the tokenizer and the packed data the runs read; the seed run, both clones and seven runs)."""

from __future__ import annotations

from growup.study import Merge

MERGES = [Merge("1x", method, ("isl", "swe")) for method in ("linear", "ties")]
TARGETS = [
    *(f"evals/isl-{setup}" for setup in ("1x", "1x-cloned", "2x")),
    *(f"evals/merges/{m.setup}/{m.method}/{m.subset_name}" for m in MERGES),
]
