"""Tables: final scores (language × setup × benchmark) and the merge table, as CSV and Markdown,
every accuracy with its interval (evals.csv's bootstrap interval; for a mean over a merge's
languages, the per-language intervals combined by `stats.combined_interval`)."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from growup.io import atomic_write_text
from growup.report.frame import final_rows, metric
from growup.report.stats import combined_interval
from growup.study import subset_languages

BOUNDS = ("_low", "_high")


def final_scores(df: pd.DataFrame) -> pd.DataFrame:
    """Final accuracy of every language and joint run: rows (language, setup), columns
    `<benchmark>_<language>` each followed by its `_low` and `_high` interval bounds."""
    runs = metric(final_rows(df[df["kind"].isin(["language", "multilingual"])]))
    runs = runs.assign(column=runs["benchmark"] + "_" + runs["language"])
    parts = []
    for value, suffix in (("value", ""), ("ci_low", "_low"), ("ci_high", "_high")):
        part = runs.pivot_table(
            index=["run_language", "setup"], columns="column", values=value, aggfunc="first", dropna=False
        )
        parts.append(part.rename(columns=lambda c, s=suffix: c + s))
    table = pd.concat(parts, axis=1)
    names = sorted(c for c in parts[0].columns)
    table = table[[c + s for c in names for s in ("", *BOUNDS)]]
    table = table[table[names].notna().any(axis=1)]  # dropna=False spans every index pair
    return table.sort_index().round(4)


def merge_table(df: pd.DataFrame) -> pd.DataFrame:
    """Per merge: mean accuracy over its languages' MultiBLiMP, and English scores, each with an
    interval."""
    merges = metric(df[df["kind"] == "merge"])
    rows = []
    for (setup, method, subset), group in merges.groupby(["setup", "method", "subset"]):
        langs = list(subset_languages(subset))
        target = group[(group["benchmark"] == "multiblimp") & group["language"].isin(langs)]
        english = group[group["language"] == "eng"]
        row = {"setup": setup, "method": method, "subset": subset, "languages": len(langs)}
        for name, part in (("target_acc", target), ("english_acc", english)):
            mean, low, high = combined_interval(
                part[["task", "value", "ci_low", "ci_high"]].itertuples(index=False)
            )
            row |= {name: round(mean, 4), name + "_low": round(low, 4), name + "_high": round(high, 4)}
        if "seed_min" in target:  # merges of every seed: the mean over languages of each bound
            row |= {f"target_acc_seed_{b}": round(target[f"seed_{b}"].mean(), 4) for b in ("min", "max")}
        rows.append(row)
    columns = ["setup", "method", "subset", "languages"]
    columns += [n + s for n in ("target_acc", "english_acc") for s in ("", *BOUNDS)]
    if rows and "target_acc_seed_min" in rows[0]:
        columns += ["target_acc_seed_min", "target_acc_seed_max"]
    if not rows:
        return pd.DataFrame(columns=columns)
    table = pd.DataFrame(rows)[columns]
    return table.sort_values(["setup", "method", "languages", "subset"]).reset_index(drop=True)


def with_intervals(table: pd.DataFrame) -> pd.DataFrame:
    """Each value column and its `_low`/`_high` bounds as one text column: `0.620 [0.480, 0.750]`."""
    out = table.copy()
    for column in list(table.columns):
        if f"{column}_low" in table and f"{column}_high" in table:
            out[column] = [
                "" if pd.isna(v) else (f"{v:.3f}" if pd.isna(lo) else f"{v:.3f} [{lo:.3f}, {hi:.3f}]")
                for v, lo, hi in zip(
                    table[column], table[f"{column}_low"], table[f"{column}_high"], strict=True
                )
            ]
            out = out.drop(columns=[f"{column}_low", f"{column}_high"])
    return out


def write(table: pd.DataFrame, stem: str | os.PathLike[str], index: bool = True) -> None:
    """`stem`.csv (numbers, bounds in their own columns) and `stem`.md (value [low, high]), atomically."""
    stem = Path(stem)
    atomic_write_text(stem.with_suffix(".csv"), table.to_csv(index=index, lineterminator="\n"))
    atomic_write_text(stem.with_suffix(".md"), with_intervals(table).to_markdown(index=index) + "\n")
