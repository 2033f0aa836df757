"""Uncertainty of minimal-pair accuracies: a seeded bootstrap over pairs, paired comparisons, and
the three-way verdict (holds / does not hold / inconclusive) of a claim made of comparisons.

Why a bootstrap over pairs: an accuracy on n pairs has a standard error of about sqrt(p(1-p)/n),
0.07 on the mini study's 50 pairs, so differences of a few points decide nothing. Every resample
of a task draws its pairs once (a seed per task), and every model scored on that task is read
at the same draw, so a difference between two models on the same pairs is paired, and a mean
over tasks resamples each task independently.
"""

from __future__ import annotations

import json
import math
import os
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from growup.errors import GrowupError
from growup.io import atomic_write_text

Key = tuple[str, str, str, str]  # model, step, task, metric
HOLDS, FAILS, INCONCLUSIVE = "holds", "does not hold", "inconclusive"


@dataclass(frozen=True)
class Cell:
    """One model's per-pair verdicts on one task: doc ids (sorted) and 1.0/0.0 per pair."""

    doc_ids: np.ndarray
    correct: np.ndarray


def _ranges(ids: np.ndarray) -> list[list[int]]:
    """Sorted ids as [start, stop) runs: 0..1999 is one run, so the file stays small."""
    runs: list[list[int]] = []
    for i in ids.tolist():
        if runs and runs[-1][1] == i:
            runs[-1][1] = i + 1
        else:
            runs.append([i, i + 1])
    return runs


class Pairs:
    """Per-pair verdicts of every (model, step, task, metric), as read from lm-eval's samples."""

    def __init__(self, cells: dict[Key, Cell] | None = None) -> None:
        self.cells: dict[Key, Cell] = dict(cells or {})

    def add(self, key: Key, doc_ids: Iterable[int], correct: Iterable[float]) -> None:
        ids, hits = np.asarray(list(doc_ids), dtype=np.int64), np.asarray(list(correct), dtype=np.float64)
        order = np.argsort(ids, kind="stable")
        ids, hits = ids[order], hits[order]
        if len(np.unique(ids)) != len(ids):
            raise GrowupError(f"samples of {key} repeat a doc_id; every pair must be scored once")
        self.cells[key] = Cell(ids, hits)

    def __contains__(self, key: Key) -> bool:
        return key in self.cells

    def __len__(self) -> int:
        return len(self.cells)

    def save(self, path: str | os.PathLike[str]) -> None:
        """JSON lines, one per cell, sorted: verdicts as a '0'/'1' string, doc ids as runs."""
        lines = []
        for (model, step, task, metric), cell in sorted(self.cells.items()):
            row = {
                "model": model,
                "step": step,
                "task": task,
                "metric": metric,
                "docs": _ranges(cell.doc_ids),
                "correct": "".join("1" if c else "0" for c in cell.correct),
            }
            lines.append(json.dumps(row) + "\n")
        atomic_write_text(path, "".join(lines))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Pairs:
        if not Path(path).is_file():
            raise GrowupError(f"no per-pair table at {str(path)!r}: run `growup eval tidy` first")
        pairs = cls()
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            ids = [i for start, stop in row["docs"] for i in range(start, stop)]
            pairs.add(
                (row["model"], str(row["step"]), row["task"], row["metric"]), ids, map(int, row["correct"])
            )
        return pairs


class Bootstrap:
    """Resampled accuracies of the cells of `pairs`: `resamples` draws per task, seeded by
    (`seed`, task name), over the union of the doc ids any model has on that task."""

    def __init__(self, pairs: Pairs, resamples: int, seed: int) -> None:
        if resamples < 100:
            raise GrowupError(f"config key 'report.bootstrap_resamples' is {resamples}; allowed: >= 100")
        self.pairs, self.resamples, self.seed = pairs, resamples, seed
        self._universe: dict[str, np.ndarray] = {}
        for (_, _, task, _), cell in pairs.cells.items():
            self._universe[task] = np.union1d(self._universe.get(task, cell.doc_ids), cell.doc_ids)
        self._counts: dict[str, np.ndarray] = {}
        self._reps: dict[Key, np.ndarray] = {}

    def counts(self, task: str) -> np.ndarray:
        """(resamples × pairs) multiplicity of each pair of `task` in each resample."""
        if task not in self._counts:
            n = len(self._universe[task])
            rng = np.random.default_rng([self.seed, zlib.crc32(task.encode())])
            draws = rng.integers(0, n, size=(self.resamples, n))
            flat = (draws + np.arange(self.resamples)[:, None] * n).ravel()
            counts = np.bincount(flat, minlength=self.resamples * n).reshape(self.resamples, n)
            # float32 holds these small integer counts and their sums exactly, at half the memory
            self._counts[task] = counts.astype(np.float32)
        return self._counts[task]

    def point(self, key: Key) -> float:
        return float(self.cell(key).correct.mean())

    def cell(self, key: Key) -> Cell:
        if key not in self.pairs:
            raise GrowupError(f"no per-pair verdicts for {key} (model, step, task, metric)")
        return self.pairs.cells[key]

    def _fill(self, task: str) -> None:
        """Replicates of every cell of `task` scored on all of its pairs, in one matrix product."""
        universe = self._universe[task]
        keys = [
            k
            for k, c in self.pairs.cells.items()
            if k[2] == task and k not in self._reps and len(c.doc_ids) == len(universe)
        ]
        if keys:
            hits = np.stack([self.pairs.cells[k].correct for k in keys], axis=1).astype(np.float32)
            reps = (self.counts(task) @ hits).astype(np.float64) / len(universe)
            self._reps.update({k: reps[:, i] for i, k in enumerate(keys)})

    def replicates(self, key: Key) -> np.ndarray:
        """The cell's accuracy in every resample (shape: resamples)."""
        if key not in self._reps:
            self.cell(key)  # names a missing cell
            self._fill(key[2])
        if key not in self._reps:  # a cell scored on part of the task's pairs
            cell, universe = self.cell(key), self._universe[key[2]]
            sub = self.counts(key[2])[:, np.searchsorted(universe, cell.doc_ids)]
            total = sub.sum(axis=1, dtype=np.float64)
            with np.errstate(invalid="ignore", divide="ignore"):
                reps = (sub @ cell.correct.astype(np.float32)).astype(np.float64) / total
            # a resample that drew none of a subset's pairs: its full-sample accuracy stands in
            self._reps[key] = np.where(total > 0, reps, cell.correct.mean())
        return self._reps[key]


def interval(reps: np.ndarray, confidence: float) -> tuple[float, float]:
    """Percentile interval of the bootstrap replicates."""
    check_confidence(confidence)
    alpha = 1 - confidence
    low, high = np.quantile(reps, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


def p_value(reps: np.ndarray, null: float = 0.0) -> Any:
    """Two-sided bootstrap p-value of `statistic == null`: twice the share of replicates on the far
    side of `null` (add-one smoothed, so it is never 0 from a finite number of resamples). Along
    the last axis: a float for one set of replicates, an array for a stack of them."""
    reps = np.asarray(reps)
    below, above = np.sum(reps <= null, axis=-1), np.sum(reps >= null, axis=-1)
    p = np.minimum(1.0, 2 * (np.minimum(below, above) + 1) / (reps.shape[-1] + 1))
    return float(p) if np.ndim(p) == 0 else p


def holm(pvalues: list[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (step-down, monotone), in the input order."""
    order = sorted(range(len(pvalues)), key=lambda i: pvalues[i])
    adjusted, running = [0.0] * len(pvalues), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(pvalues) - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


def check_confidence(confidence: float) -> None:
    if not 0 < confidence < 1:
        raise GrowupError(f"config key 'report.confidence' is {confidence!r}; allowed: 0 < confidence < 1")


@dataclass
class Comparison:
    """One comparison of a claim, oriented so that the claim says `estimate > null`."""

    labels: dict[str, str]
    estimate: float
    low: float
    high: float
    p: float
    null: float = 0.0
    p_holm: float = math.nan
    decision: str = INCONCLUSIVE
    # what the design could decide (growup.report.power): pairs per task, the discordant share,
    # the minimum detectable difference from `null` and the pairs per task that would decide
    # the observed difference
    pairs: tuple[int, ...] = ()
    discordant: float = math.nan
    mdd: float = math.nan
    needed: float = math.nan


def compare(
    labels: dict[str, str], estimate: float, reps: np.ndarray, confidence: float, null: float = 0.0
) -> Comparison:
    low, high = interval(reps, confidence)
    return Comparison(labels, estimate, low, high, p_value(reps, null), null)


def combine(comparisons: list[Comparison], confidence: float) -> str:
    """The claim's verdict. Each comparison's p-value is Holm-adjusted over the claim's comparisons;
    one is decided when its adjusted p is below 1 - confidence, for the claim when its estimate
    is above the null value, against it when below. The claim holds when more than half of its
    comparisons are decided for it, does not hold when more than half are decided against it, and
    is inconclusive otherwise (for one comparison: its interval must exclude the null value)."""
    check_confidence(confidence)
    for c, adjusted in zip(comparisons, holm([c.p for c in comparisons]), strict=True):
        c.p_holm = adjusted
        decided = adjusted < 1 - confidence
        c.decision = INCONCLUSIVE if not decided else (HOLDS if c.estimate > c.null else FAILS)
    half = len(comparisons) / 2
    if not comparisons:
        return INCONCLUSIVE
    if sum(c.decision == HOLDS for c in comparisons) > half:
        return HOLDS
    if sum(c.decision == FAILS for c in comparisons) > half:
        return FAILS
    return INCONCLUSIVE


def combined_interval(values: Iterator[tuple[str, float, float, float]] | list) -> tuple[float, float, float]:
    """Mean of several accuracies with an approximate interval from their own intervals, for
    figures and tables that read evals.csv alone: half-widths of different tasks (independent
    pairs) add in quadrature, those of one task (the same pairs) add linearly (conservative).
    `values`: (task, value, low, high) rows."""
    rows = list(values)
    if not rows:
        return math.nan, math.nan, math.nan
    mean = sum(v for _, v, _, _ in rows) / len(rows)
    per_task: dict[str, list[float]] = {}
    for task, _, low, high in rows:
        per_task.setdefault(task, []).append((high - low) / 2)
    half = math.sqrt(sum(sum(h) ** 2 for h in per_task.values())) / len(rows)
    return mean, mean - half, mean + half
