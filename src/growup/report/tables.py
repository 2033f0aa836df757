"""Tables: final scores (language × setup × benchmark) and the merge table, as CSV and Markdown."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from growup.io import atomic_write_text
from growup.report.frame import final_rows, metric


def final_scores(df: pd.DataFrame) -> pd.DataFrame:
    """Final accuracy of every language and joint run: rows (language, setup), columns benchmark_language."""
    runs = metric(final_rows(df[df["kind"].isin(["language", "joint"])]))
    runs = runs.assign(column=runs["benchmark"] + "_" + runs["language"])
    table = runs.pivot_table(
        index=["run_language", "setup"], columns="column", values="value", aggfunc="first"
    )
    return table.sort_index().round(4)


def merge_table(df: pd.DataFrame) -> pd.DataFrame:
    """Per merge: mean accuracy over its languages' MultiBLiMP, and English scores."""
    merges = metric(df[df["kind"] == "merge"])
    rows = []
    for (setup, method, subset), group in merges.groupby(["setup", "method", "subset"]):
        langs = subset.split("+")
        target = group[(group["benchmark"] == "multiblimp") & group["language"].isin(langs)]["value"].mean()
        english = group[group["language"] == "eng"]["value"].mean()
        rows.append(
            {
                "setup": setup,
                "method": method,
                "subset": subset,
                "languages": len(langs),
                "target_acc": round(target, 4),
                "english_acc": round(english, 4),
            }
        )
    return pd.DataFrame(rows).sort_values(["setup", "method", "languages", "subset"]).reset_index(drop=True)


def write(table: pd.DataFrame, stem: str | os.PathLike[str], index: bool = True) -> None:
    """`stem`.csv and `stem`.md, atomically."""
    stem = Path(stem)
    atomic_write_text(stem.with_suffix(".csv"), table.to_csv(index=index, lineterminator="\n"))
    atomic_write_text(stem.with_suffix(".md"), table.to_markdown(index=index) + "\n")
