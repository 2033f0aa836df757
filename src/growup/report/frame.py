"""The tidy evaluation table (results/tables/evals.csv) as a DataFrame, with the study's naming."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from growup.errors import GrowupError
from growup.study import parse_name


def load(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read evals.csv and split model names into kind, language, setup, method and subset.
    A table from before intervals were tidied (no ci_low/ci_high) loads with empty intervals."""
    if not Path(path).is_file():
        raise GrowupError(f"no evaluation table at {str(path)!r}: run `growup eval tidy` first")
    df = pd.read_csv(path, dtype={"step": str})
    for column in ("ci_low", "ci_high"):
        if column not in df:
            df[column] = float("nan")
    return df.join(df["model"].apply(parse_model).apply(pd.Series))


def parse_model(name: str) -> dict[str, str | None]:
    """The table's columns of a model name, by `growup.study.parse_name` (the one parser of names):
    kind (seed, english, language, multilingual or merge), run_language (the run name's prefix),
    setup, and a merge's method and subset."""
    parsed = parse_name(name)
    return {
        "kind": parsed.kind,
        "run_language": parsed.prefix,
        "setup": parsed.setup,
        "method": parsed.method,
        "subset": parsed.subset,
    }


def final_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Each model's last evaluated point (the highest step, or 'final')."""
    order = df["step"].map(lambda s: int(s) if str(s).isdigit() else 1 << 62)
    last = df.assign(_o=order).groupby("model")["_o"].transform("max")
    return df[order == last]


def metric(df: pd.DataFrame, name: str = "acc") -> pd.DataFrame:
    return df[df["metric"] == name]
