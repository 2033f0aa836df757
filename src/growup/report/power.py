"""What a comparison can decide: the test a claim's wording implies (with its margin), the
minimum detectable difference and the pairs needed of the paired design, and the two-level
bootstrap (training seeds, then pairs) that puts training variance into an interval.

Tests. Every comparison is oriented so that the claim says `estimate > boundary`:
  superiority      boundary 0: "beats", "reduces", "is worse than";
  non-inferiority  boundary -margin: "matches or surpasses" (Wellek 2010; the lower bound of the
                   difference lies above -δ), decided against when the upper bound lies below -δ;
  threshold        boundary = a stated value (claim 4: the spread of the methods).
With a margin of 0 a non-inferiority test is the superiority test.

Power (the paired design, McNemar-style). A comparison is a weighted sum of accuracies; on each
task t its per-pair contribution is D = Σ w·correct (for a difference of two models: +1, -1 or
0 per pair, nonzero on the discordant pairs). The estimate is Σ_t mean(D_t), its variance
Σ_t (E[D_t²] - E[D_t]²)/n_t, plus the variance between training seeds when there are replicates.
The test decides for the claim at level α = 1 - confidence when the estimate lies
z_{1-α/2} standard errors beyond its boundary; with k = z_{1-α/2} + z_{power}, a true distance m
from the boundary is decided with that power when m = k·SE(at the true difference). Solved for
m with E[D_t²] held at its observed value (the discordance) and the difference spread evenly over
the tasks, this is `mdd`; solved for n at the observed difference, `pairs_needed`. For one task
and two models it is the Wald form of Connor (1987): n = k²(d - Δ²)/Δ², with d the discordant
share. Both hold for the single comparison at the configured confidence; Holm's adjustment over a
claim's comparisons asks somewhat more.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from growup.errors import GrowupError
from growup.report.stats import Bootstrap, Cell, Key, check_confidence, p_value
from growup.study import split_replicate

POWER = 0.8  # the conventional target power of a design (Cohen 1988)
SUPERIORITY, NON_INFERIORITY, THRESHOLD = "superiority", "non-inferiority", "threshold"


@dataclass(frozen=True)
class Test:
    """How one claim's comparisons are decided: each must lie above `boundary`."""

    kind: str
    boundary: float

    def describe(self, margin_points: float | None = None) -> str:
        """The test in words, for the claims report."""
        b = f"{self.boundary:+.3f}"
        if self.kind == NON_INFERIORITY:
            unit = "point" if margin_points == 1 else "points"
            share = f"{-self.boundary:.3f}"
            points = f"{margin_points:g} accuracy {unit} ({share})" if margin_points is not None else share
            return (
                f"non-inferiority with margin δ = {points}: decided for when the "
                f"difference's interval lies above −δ = {b}, against when it lies below it"
            )
        if self.kind == THRESHOLD:
            return f"threshold: decided for when the interval lies above {b}, against when below it"
        return "superiority: decided for when the interval lies above 0, against when below 0"


def superiority() -> Test:
    return Test(SUPERIORITY, 0.0)


def non_inferiority(margin: float) -> Test:
    """`margin` as a share of accuracy (0.01 = 1 accuracy point), 0 or more."""
    if not margin >= 0:
        raise GrowupError(f"config key 'report.margin' is {margin!r}; allowed: >= 0 (accuracy points)")
    return Test(NON_INFERIORITY, -float(margin))


def threshold(value: float) -> Test:
    return Test(THRESHOLD, float(value))


@dataclass(frozen=True)
class Design:
    """The paired design of one comparison, from its per-pair contributions.

    `pairs[t]` pairs on task t, `second[t]` = E[D_t²] (for two models: the discordant share),
    `mean[t]` = E[D_t], `spacing[t]` the smallest gap between values D_t takes (1 for two
    models); `discordant` the share of all pairs with D ≠ 0; `seed_var` the variance the training
    seeds add to the estimate (0 without replicates)."""

    pairs: tuple[int, ...]
    second: tuple[float, ...]
    mean: tuple[float, ...]
    spacing: tuple[float, ...]
    discordant: float
    seed_var: float = 0.0

    @classmethod
    def of(cls, contributions: list[np.ndarray], seed_var: float = 0.0) -> Design:
        """From each task's per-pair contributions D_t (one array per task)."""
        rows = [np.asarray(d, dtype=np.float64) for d in contributions if len(d)]
        if not rows:
            raise GrowupError("a comparison with no pairs has no design")
        total = sum(len(d) for d in rows)
        return cls(
            tuple(len(d) for d in rows),
            tuple(float(np.mean(d**2)) for d in rows),
            tuple(float(np.mean(d)) for d in rows),
            tuple(_spacing(d) for d in rows),
            float(sum(int(np.count_nonzero(np.abs(d) > 1e-12)) for d in rows) / total),
            max(0.0, float(seed_var)),
        )

    @property
    def tasks(self) -> int:
        return len(self.pairs)

    def variance(self, difference: float, scale: float = 1.0) -> float:
        """Variance of the estimate when the true difference is `difference`, spread evenly over
        the tasks, each task's E[D²] as observed and its pairs multiplied by `scale`."""
        t = self.tasks
        per_task = sum((q - (difference / t) ** 2) / n for q, n in zip(self.second, self.pairs, strict=True))
        return max(per_task, 0.0) / scale + self.seed_var

    def correction(self, scale: float = 1.0) -> float:
        """Half the lattice step of the estimate (a continuity correction): a difference of counts
        moves in whole pairs, so the bootstrap's tail at the boundary holds half an atom."""
        return min(s / n for s, n in zip(self.spacing, self.pairs, strict=True)) / (2 * scale)


def _spacing(values: np.ndarray) -> float:
    distinct = np.unique(np.round(values, 12))
    gaps = np.diff(distinct)
    return float(gaps.min()) if len(gaps) else 1.0


def _k(confidence: float, power: float) -> float:
    check_confidence(confidence)
    if not 0 < power < 1:
        raise GrowupError(f"power is {power!r}; allowed: 0 < power < 1")
    unit = NormalDist()
    return unit.inv_cdf(1 - (1 - confidence) / 2) + unit.inv_cdf(power)


def _root(f, low: float, high: float) -> float:
    """The x in [low, high] where the increasing function f crosses 0 (bisection)."""
    for _ in range(200):
        mid = (low + high) / 2
        low, high = (mid, high) if f(mid) < 0 else (low, mid)
    return high


def mdd(design: Design, boundary: float, confidence: float, power: float = POWER) -> float:
    """The minimum detectable difference: the smallest distance m above `boundary` at which a
    true difference (boundary + m) is decided for the claim with probability `power`:
    m = k·sqrt(V(boundary + m)) + c, V the variance at that difference (`Design.variance`) and c
    the continuity correction. For one task and two models, without c: the Wald form of Connor's
    McNemar design, m = k·sqrt((d - (b + m)²)/n)."""
    k = _k(confidence, power)
    c = design.correction()
    return _root(lambda m: m - c - k * math.sqrt(design.variance(boundary + m)), 0.0, 4.0)


def pairs_needed(
    design: Design, estimate: float, boundary: float, confidence: float, power: float = POWER
) -> float:
    """Pairs per task at which the observed difference `estimate` would be decided (for or against
    the claim, by its side of `boundary`) with probability `power`, each task's per-pair moments as
    observed: the n where |estimate - boundary| = k·SE(n) + c(n). `inf` when no number of pairs
    decides it: no distance from the boundary, or the seeds' variance alone too large (then more
    seeds, not more pairs, are needed)."""
    k = _k(confidence, power)
    gap = abs(estimate - boundary)
    n0 = min(design.pairs)
    spread = sum((q - m * m) / n for q, m, n in zip(design.second, design.mean, design.pairs, strict=True))

    def surplus(log_scale: float) -> float:
        scale = math.exp(log_scale)
        se = math.sqrt(max(spread, 0.0) / scale + design.seed_var)
        return gap - design.correction(scale) - k * se

    if gap <= 0 or surplus(60.0) <= 0:
        return math.inf
    return max(n0 * math.exp(_root(surplus, -30.0, 60.0)), 1.0)


# --- checking the formulas by simulation ------------------------------------------------------


def simulated_power(
    n: int,
    discordant: float,
    difference: float,
    boundary: float,
    confidence: float,
    draws: int = 4000,
    resamples: int = 2000,
    seed: int = 0,
) -> float:
    """The share of simulated studies decided for the claim: each draws n pairs of two models with
    the given discordant share and true difference (P(D=+1) = (d + Δ)/2, P(D=-1) = (d - Δ)/2), then
    decides as the claims report does: a pair bootstrap of the mean difference (`resamples` draws;
    for a variable of three values exactly a multinomial of its counts), its two-sided p-value
    against `boundary` (`stats.p_value`) below 1 - confidence, with the estimate above it."""
    plus, minus = (discordant + difference) / 2, (discordant - difference) / 2
    if min(plus, minus) < 0 or plus + minus > 1:
        raise GrowupError(f"no paired design has discordance {discordant} and difference {difference}")
    rng = np.random.default_rng([seed, zlib.crc32(f"{n} {discordant} {difference} {boundary}".encode())])
    counts = rng.multinomial(n, [plus, minus, 1 - plus - minus], size=draws)
    # studies with the same counts have the same bootstrap distribution: decide each count once
    seen, times = np.unique(counts[:, :2], axis=0, return_counts=True)
    n_plus, n_minus = seen[:, :1], seen[:, 1:2]
    up = rng.binomial(n, n_plus / n, size=(len(seen), resamples))
    rest = np.divide(n_minus, n - n_plus, out=np.zeros(n_minus.shape), where=n > n_plus)
    down = rng.binomial(n - up, rest)
    p = p_value((up - down) / n, boundary)
    estimate = (n_plus - n_minus)[:, 0] / n
    decided = int(np.sum(times[(p < 1 - confidence) & (estimate > boundary)]))
    return decided / draws


# --- the two-level bootstrap -------------------------------------------------------------------


def seed_draws(seeds: int, resamples: int, seed: int) -> np.ndarray:
    """(resamples × seeds) indices of the replicates each resample draws, with replacement, the
    same for every model with that many replicates (replicate i of every run shares seed i, so
    comparisons stay paired by seed as they are by pair)."""
    rng = np.random.default_rng([seed, 0x5EED, seeds])
    return rng.integers(0, seeds, size=(resamples, seeds))


def two_level(per_seed: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """The replicates of a mean over seeds: `per_seed` (seeds × resamples) holds each seed's pair
    bootstrap (every seed read at the same pair draw); resample r averages the seeds `draws[r]`."""
    seeds, resamples = per_seed.shape
    if draws.shape != (resamples, seeds):
        raise GrowupError(f"seed draws of shape {draws.shape}, expected {(resamples, seeds)}")
    return per_seed[draws.T, np.arange(resamples)].mean(axis=0)


class SeedBootstrap:
    """Accuracies of training recipes with seed replicates, resampled at two levels.

    A cell key names a recipe by the plain run name (`ekk-2x`); its members are that run and its
    seed replicates in `pairs` (`ekk-2x-s1`, ...; `growup.study.parse_name`). A recipe's accuracy is
    the mean over its members; its replicates draw the seeds with replacement (`seed_draws`) and
    read each drawn seed at the pair bootstrap's draw (`two_level`), so an interval holds both the
    items' and the training seeds' variance. A recipe of one member is read as the pair
    bootstrap reads it, number for number."""

    def __init__(self, boot: Bootstrap, seed: int) -> None:
        self.boot, self.seed = boot, seed
        found: dict[Key, list[tuple[int, Key]]] = {}
        for key in boot.pairs.cells:
            base, replicate = split_replicate(key[0])
            found.setdefault((base, *key[1:]), []).append((-1 if replicate is None else replicate, key))
        self.groups = {recipe: [key for _, key in sorted(members)] for recipe, members in found.items()}
        self._reps: dict[Key, np.ndarray] = {}

    def members(self, key: Key) -> list[Key]:
        return self.groups.get(key, [key])

    def seeds(self, key: Key) -> int:
        return len(self.members(key))

    def __contains__(self, key: object) -> bool:
        return key in self.groups

    def point(self, key: Key) -> float:
        return float(np.mean([self.boot.point(k) for k in self.members(key)]))

    def pair_replicates(self, key: Key) -> np.ndarray:
        """The mean over seeds at every pair resample, the seeds held fixed (the pair level only)."""
        return np.mean([self.boot.replicates(k) for k in self.members(key)], axis=0)

    def replicates(self, key: Key) -> np.ndarray:
        members = self.members(key)
        if len(members) == 1:
            return self.boot.replicates(members[0])
        if key not in self._reps:
            per_seed = np.stack([self.boot.replicates(k) for k in members])
            self._reps[key] = two_level(per_seed, seed_draws(len(members), per_seed.shape[1], self.seed))
        return self._reps[key]

    def cell(self, key: Key) -> Cell:
        """The recipe's per-pair verdicts: the mean over its seeds, on the pairs every seed has."""
        cells = [self.boot.cell(k) for k in self.members(key)]
        if len(cells) == 1:
            return cells[0]
        ids = cells[0].doc_ids
        for c in cells[1:]:
            ids = np.intersect1d(ids, c.doc_ids)
        return Cell(ids, np.mean([c.correct[np.searchsorted(c.doc_ids, ids)] for c in cells], axis=0))
