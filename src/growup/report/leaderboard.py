"""The merge leaderboard: every merge method of the grid ranked per setup and language subset, from
the tidy evaluation table and its per-pair verdicts alone (results/tables/merge_leaderboard.csv|md).

Per setup, one row per method for each merged subset, and first a row `all` over the subsets that
every method merged. Each row: mean target accuracy (the merged languages' MultiBLiMP), English
accuracy (mean of the English tasks: with one start model per setup it ranks methods as the
change from it would) and joint multilingual training's accuracy on the same languages, each with
its bootstrap interval over pairs; and two paired differences, each with its interval and
Holm-adjusted p: the method minus the best of the paper's five methods (highest point estimate on
the same rows), and the method minus joint multilingual training. Holm adjusts over one ranking
(a setup and subset) at a time: over the whole grid, with bootstrap p-values no smaller than
2/(resamples + 1), no comparison could be decided.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import pandas as pd

from growup.io import atomic_write_text
from growup.report import power
from growup.report.claims import (
    Measure,
    Stats,
    best_paper_method,
    english_tasks,
    last_step,
    merges,
    method_means,
)
from growup.report.stats import Bootstrap, Comparison, Pairs, holm, interval
from growup.report.tables import with_intervals
from growup.study import MULTILINGUAL, PAPER_METHODS, SETUPS, merge_name, run_name, subset_languages

ALL = "all"  # the row over every subset that all of a setup's methods merged
PAPER, BEYOND = "paper", "beyond the paper"
VS_BEST, VS_JOINT = "vs_best_paper", "vs_joint"
COLUMNS = [
    "setup",
    "subset",
    "subsets",
    "rank",
    "method",
    "family",
    *(f"{name}{s}" for name in ("target_acc", "english_acc", "joint_acc") for s in ("", "_low", "_high")),
    "best_paper_method",
    *(f"{name}{s}" for name in (VS_BEST, VS_JOINT) for s in ("", "_low", "_high", "_p_holm")),
]


def _joint(df: pd.DataFrame, setup: str, measure: Measure) -> Measure | None:
    """The same weighted cells scored by the setup's joint multilingual run (its last step)."""
    joint = run_name(MULTILINGUAL, setup)
    out = []
    for w, (_, _, task, metric) in measure:
        step = last_step(df, joint, task)
        if step is None:
            return None
        out.append((w, (joint, step, task, metric)))
    return out


def _english(df: pd.DataFrame, setup: str, method: str, subsets: list[str]) -> Measure | None:
    """The mean over `subsets` of each merge's English tasks (those every one was scored on)."""
    models = [merge_name(setup, method, subset) for subset in subsets]
    tasks = sorted(set.intersection(*(set(english_tasks(df[df["model"] == m])) for m in models)))
    if not tasks:
        return None
    return [(1 / (len(models) * len(tasks)), (m, "final", t, "acc")) for m in models for t in tasks]


def _minus(a: Measure, b: Measure) -> Measure:
    return a + [(-w, k) for w, k in b]


def _estimate(st: Stats, measure: Measure | None) -> tuple[float, float, float]:
    if measure is None or not measure or not st.has(measure):
        return math.nan, math.nan, math.nan
    low, high = interval(st.reps(measure), st.confidence)
    return st.point(measure), low, high


def _groups(df: pd.DataFrame, setup: str) -> list[tuple[str, list[str]]]:
    """(label, subsets) of a setup's rows: `all` (every subset all methods merged), then each."""
    rows = merges(df)
    rows = rows[rows["setup"] == setup]
    subsets = sorted(set(rows["subset"]), key=lambda s: (len(subset_languages(s)), s))
    per_method = [set(group["subset"]) for _, group in rows.groupby("method")]
    common = sorted(set.intersection(*per_method)) if per_method else []
    return [(ALL, common)] * bool(common) + [(s, [s]) for s in subsets]


def _bounds(name: str, values: tuple[float, ...]) -> dict[str, float]:
    return dict(zip((name, f"{name}_low", f"{name}_high", f"{name}_p_holm"), values, strict=False))


def leaderboard(
    df: pd.DataFrame, pairs: Pairs, *, confidence: float, resamples: int, seed: int
) -> pd.DataFrame:
    """The leaderboard table (COLUMNS): setups in order, `all` first, then subsets, each by rank."""
    st = Stats(Bootstrap(pairs, resamples, seed), confidence)
    rows: list[dict] = []
    for setup in SETUPS:
        for label, subsets in _groups(df, setup):
            tests: dict[str, list[tuple[dict, Comparison]]] = {VS_BEST: [], VS_JOINT: []}
            means = {m: v for m, v in method_means(df, setup, subsets).items() if st.has(v)}
            best = best_paper_method(st, means)
            for rank, method in enumerate(sorted(means, key=lambda m: (-st.point(means[m]), m)), 1):
                row = {
                    "setup": setup,
                    "subset": label,
                    "subsets": len(subsets),
                    "rank": rank,
                    "method": method,
                    "family": PAPER if method in PAPER_METHODS else BEYOND,
                    "best_paper_method": best or "",
                    **_bounds("target_acc", _estimate(st, means[method])),
                    **_bounds("english_acc", _estimate(st, _english(df, setup, method, subsets))),
                }
                joint = _joint(df, setup, means[method])
                row |= _bounds("joint_acc", _estimate(st, joint))
                against = {
                    VS_BEST: means[best] if best and best != method else None,
                    VS_JOINT: joint if joint and st.has(joint) else None,
                }
                for kind, other in against.items():
                    row |= _bounds(kind, (math.nan,) * 4)
                    if other is not None:
                        tests[kind].append(
                            (row, st.compare({}, _minus(means[method], other), power.superiority()))
                        )
                rows.append(row)
            for kind, found in tests.items():  # Holm over one ranking's comparisons of a kind
                for (row, c), adjusted in zip(found, holm([c.p for _, c in found]), strict=True):
                    row |= _bounds(kind, (c.estimate, c.low, c.high, adjusted))
    if not rows:
        return pd.DataFrame(columns=COLUMNS)
    return pd.DataFrame(rows)[COLUMNS].round(4)


def _p(p: float) -> str:
    return "" if math.isnan(p) else ("<0.001" if p < 0.001 else f"{p:.3f}")


def write(table: pd.DataFrame, stem: str | os.PathLike[str]) -> None:
    """`stem`.csv (numbers, bounds in their own columns) and `stem`.md (value [low, high], signed
    differences, Holm p to three places), atomically."""
    stem = Path(stem)
    atomic_write_text(stem.with_suffix(".csv"), table.to_csv(index=False, lineterminator="\n"))
    shown = with_intervals(table)
    for kind in (VS_BEST, VS_JOINT):
        shown[kind] = [
            "" if math.isnan(v) else f"{v:+.3f} [{lo:+.3f}, {hi:+.3f}]"
            for v, lo, hi in zip(table[kind], table[f"{kind}_low"], table[f"{kind}_high"], strict=True)
        ]
        shown[f"{kind}_p_holm"] = [_p(p) for p in table[f"{kind}_p_holm"]]
    atomic_write_text(stem.with_suffix(".md"), shown.to_markdown(index=False) + "\n")
