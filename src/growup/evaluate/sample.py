"""Which pairs of a task are scored when `evaluation.limit` is set: a seeded sample, stratified by
the benchmark's own phenomenon columns, the same for every model so comparisons stay paired.

Why: the benchmark files are ordered by phenomenon (MultiBLiMP) or paradigm (BLiMP), so the first
N pairs are one construction. The sample allocates the limit over the strata of the first column
(`evaluation.<set>.strata`, e.g. MultiBLiMP's phenomenon), at least one pair to each while the
limit allows, the rest in proportion to their sizes (largest remainder, no stratum over its
size), then in the same way within each stratum over the next column (e.g. the grammatical
feature), and draws the pairs of each innermost stratum at random. Every draw is seeded by
`evaluation.sample_seed` and the task's name: the same data, limit and seed give the same items in
any process. A limit at or above a task's pair count scores the whole task.

The chosen row indices go to lm-eval as its `samples` argument (sorted: lm-eval 0.4 maps logged
doc ids back through the list in file order) and into every result, so
`lm_eval ... --samples FILE` scores exactly these items.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from growup.errors import GrowupError

MISSING = "<missing>"  # the stratum of a row whose column is empty


@dataclass(frozen=True)
class Sample:
    """The items of one task a limited evaluation scores (row indices of the task's data)."""

    task: str
    ids: tuple[int, ...]
    of: int  # the task's pairs
    strata: tuple[str, ...]
    seed: int

    def record(self) -> dict[str, Any]:
        """What each result records: enough to score the same items again (`--samples`)."""
        return {
            "seed": self.seed,
            "strata": list(self.strata),
            "size": len(self.ids),
            "of": self.of,
            "ids": list(self.ids),
        }


def allocate(sizes: Sequence[int], n: int, rng: np.random.Generator, floors: Sequence[int] = ()) -> list[int]:
    """`n` items over strata of `sizes`. First each stratum's floor (the innermost strata it holds,
    so each of them can get one) when `n` covers every floor, else one to each (to as many as `n`
    allows, larger strata first, ties in seeded order); then the rest in proportion to size by
    largest remainder, no stratum above its size."""
    sizes = list(sizes)
    n = min(n, sum(sizes))
    floors = [min(f, s) for f, s in zip(floors or [1] * len(sizes), sizes, strict=True)]
    order = sorted(range(len(sizes)), key=lambda i: (-sizes[i], rng.random()))
    take = [0] * len(sizes)
    if n >= sum(floors):
        take = floors
    else:
        for i in order[:n]:
            take[i] = 1
    while (left := n - sum(take)) > 0:
        room = [s - t for s, t in zip(sizes, take, strict=True)]
        weight = sum(s for s, r in zip(sizes, room, strict=True) if r > 0)
        share = [left * s / weight if r > 0 else 0.0 for s, r in zip(sizes, room, strict=True)]
        whole = [min(int(x), r) for x, r in zip(share, room, strict=True)]
        if sum(whole) == 0:  # fewer items left than strata with room: largest remainders
            ranked = sorted((i for i in order if room[i] > 0), key=lambda i: -share[i])
            whole = [0] * len(sizes)
            for i in ranked[:left]:
                whole[i] = 1
        take = [t + w for t, w in zip(take, whole, strict=True)]
    return take


def _key(value: Any) -> str:
    return MISSING if value is None or value != value else str(value)


def stratified(
    columns: Mapping[str, Sequence[Any]], rows: int, n: int, strata: Sequence[str], rng: np.random.Generator
) -> list[int]:
    """Row indices (sorted) of a sample of `n` of `rows` rows, stratified by `strata` in order."""
    if n >= rows:
        return list(range(rows))
    keys = [tuple(_key(columns[c][i]) for c in strata) for i in range(rows)]

    def draw(index: list[int], k: int, level: int) -> list[int]:
        if level == len(strata):
            return [int(i) for i in rng.choice(index, size=k, replace=False)]
        groups: dict[str, list[int]] = {}
        for i in index:
            groups.setdefault(keys[i][level], []).append(i)
        names = sorted(groups)
        leaves = [len({keys[i] for i in groups[g]}) for g in names]
        take = allocate([len(groups[g]) for g in names], k, rng, leaves)
        return [
            i
            for g, count in zip(names, take, strict=True)
            if count
            for i in draw(groups[g], count, level + 1)
        ]

    return sorted(draw(list(range(rows)), n, 0))


def task_sample(task: str, docs: Any, limit: int, strata: Sequence[str], seed: int) -> Sample:
    """The sample of `limit` pairs of one task, from its rows `docs` (a `datasets.Dataset`)."""
    names = list(getattr(docs, "column_names", []) or [])
    missing = [c for c in strata if c not in names]
    if missing:
        raise GrowupError(
            f"task {task!r} has no column {missing[0]!r} to stratify its sample by (config key "
            f"'evaluation.<set>.strata'); columns: {names}"
        )
    columns = {c: list(docs[c]) for c in strata}
    rng = np.random.default_rng([seed, zlib.crc32(task.encode())])
    ids = stratified(columns, len(docs), limit, strata, rng)
    return Sample(task, tuple(ids), len(docs), tuple(strata), seed)


def choose(
    tasks: Sequence[str],
    built: Sequence[Any],
    limit: int | None,
    strata: Mapping[str, Sequence[str]],
    seed: int,
) -> dict[str, Sample]:
    """The sample of every task (`built`: lm-eval's Task objects, in the order of `tasks`;
    `strata`: each task's columns) when `limit` is set; none without a limit (every pair is
    scored)."""
    if limit is None:
        return {}
    return {
        task: task_sample(task, obj.eval_docs, limit, strata[task], seed)
        for task, obj in zip(tasks, built, strict=True)
    }
