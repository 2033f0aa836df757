"""Synthetic evaluation tables with per-pair verdicts whose true accuracies the test chooses."""

from __future__ import annotations

import zlib
from itertools import combinations

import numpy as np
import pandas as pd

from growup.evaluate.tidy import add_seed_means
from growup.report.frame import seed_means, with_names
from growup.report.power import SeedBootstrap
from growup.report.stats import Bootstrap, Pairs, interval

SETUPS = ("1x", "1x-cloned", "2x")
START = {"1x": "english-1x", "1x-cloned": "english-1x-cloned", "2x": "english-2x"}


class Builder:
    """Rows of evals.csv and the matching pairs: each cell gets exactly round(value × n) correct
    pairs, placed by a seed of its own, so models differ pair by pair as real ones do."""

    def __init__(self, n: int) -> None:
        self.n, self.rows, self.pairs = n, [], Pairs()

    def add(self, model, step, task, language, value, tokens=0, flops_per_token=10.0, benchmark="multiblimp"):
        key = (model, str(step), task, "acc")
        rng = np.random.default_rng(zlib.crc32(repr(key).encode()))
        correct = np.zeros(self.n)
        correct[rng.permutation(self.n)[: round(value * self.n)]] = 1
        self.pairs.add(key, range(self.n), correct)
        self.rows.append(
            {
                "model": model,
                "step": str(step),
                "task": task,
                "benchmark": benchmark,
                "language": language,
                "metric": "acc",
                "value": correct.mean(),
                "stderr": 0.0,
                "n": self.n,
                "tokens": tokens,
                "flops": tokens * flops_per_token,
                "total_tokens": tokens,
                "total_flops": tokens * flops_per_token,
            }
        )

    def replicate(self, model: str, seed: int, shift: float) -> None:
        """Seed `seed`'s replicate of every cell of `model` (`<model>-s<seed>`): the same verdicts
        with round(|shift| × n) pairs flipped to correct (shift > 0) or to wrong (shift < 0)."""
        for key, cell in list(self.pairs.cells.items()):
            if key[0] != model:
                continue
            correct = cell.correct.copy()
            rng = np.random.default_rng(zlib.crc32(repr((key, seed)).encode()))
            pool = np.flatnonzero(correct == (0 if shift > 0 else 1))
            correct[rng.permutation(pool)[: round(abs(shift) * self.n)]] = 1 if shift > 0 else 0
            name = f"{model}-s{seed}"
            self.pairs.add((name, *key[1:]), cell.doc_ids, correct)
            row = next(r for r in self.rows if (r["model"], r["step"], r["task"]) == key[:3])
            self.rows.append({**row, "model": name, "value": correct.mean()})

    def frame(self, confidence: float = 0.95) -> pd.DataFrame:
        """evals.csv as `growup eval tidy` writes it and `growup.report.frame.load` reads it."""
        boot = Bootstrap(self.pairs, 500, 0)
        rows = [dict(r) for r in self.rows]
        for r in rows:
            r["ci_low"], r["ci_high"] = interval(
                boot.replicates((r["model"], r["step"], r["task"], "acc")), confidence
            )
        add_seed_means(rows, SeedBootstrap(boot, 0), confidence)
        return with_names(seed_means(pd.DataFrame(rows)))


def study(
    mode: str = "better",
    n: int = 2000,
    languages=("ekk", "fao"),
    methods=("linear", "ties"),
    subsets=None,
    steps=(10, 20),
    seeds: dict[int, float] | None = None,
) -> tuple[pd.DataFrame, Pairs]:
    """A whole study's evaluations. `mode`: 'better' (upscaled setups win every claim by 0.1 to
    0.2, joint training beats every merge, methods differ by 0.1), 'worse' (all reversed but the
    methods), 'tiny' (every difference 0.02 or less). `seeds`: seed replicates of every language
    and multilingual run, seed -> the accuracy it adds to every upscaled run's cells."""
    gap = {"better": 0.2, "worse": -0.2, "tiny": 0.02}[mode]
    bonus = 0.1 if mode != "tiny" else 0.02  # between consecutive methods
    joint = {"better": 0.9, "worse": 0.2, "tiny": 0.62}[mode]  # above / below / next to every merge
    offset = -0.1 if mode != "tiny" else 0.0  # merges against their setup's language runs
    subsets = subsets or ["+".join(languages)]
    b = Builder(n)
    for setup in SETUPS:
        for lang in languages:
            b.add(START[setup], 0, f"multiblimp_{lang}", lang, 0.5)
        b.add(START[setup], 0, "multiblimp_eng", "eng", 0.7)
        b.add(START[setup], 0, "growup_blimp_single_error", "eng", 0.7, benchmark="blimp")
        final = 0.6 + (gap if setup != "1x" else 0.0)
        english = 0.5 + (gap / 2 if setup != "1x" else 0.0)
        for lang in languages:
            run = f"{lang}-{setup}"
            for i, step in enumerate(steps, 1):
                acc = 0.5 + (final - 0.5) * i / len(steps)
                b.add(run, step, f"multiblimp_{lang}", lang, acc, tokens=10 * step)
            b.add(run, steps[-1], "multiblimp_eng", "eng", english, tokens=10 * steps[-1])
            b.add(
                run, steps[-1], "growup_blimp_single_error", "eng", english, 10 * steps[-1], benchmark="blimp"
            )
        for lang in languages:
            b.add(f"multilingual-{setup}", 40, f"multiblimp_{lang}", lang, joint)
        for j, method in enumerate(methods):
            for subset in subsets:
                model = f"merge-{setup}-{method}-{subset}"
                for lang in subset.split("+"):
                    b.add(model, "final", f"multiblimp_{lang}", lang, final + offset + bonus * j)
                b.add(model, "final", "multiblimp_eng", "eng", 0.5)
    for seed, shift in (seeds or {}).items():
        for setup in SETUPS:
            for prefix in (*languages, "multilingual"):
                b.replicate(f"{prefix}-{setup}", seed, shift if setup != "1x" else 0.0)
    return b.frame(), b.pairs


def every_subset(languages) -> list[str]:
    return ["+".join(c) for k in range(2, len(languages) + 1) for c in combinations(languages, k)]
