"""The tidy evaluation table (results/tables/evals.csv) as a DataFrame, with the study's naming."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from growup.errors import GrowupError
from growup.study import parse_name, split_replicate


def load(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read evals.csv and split model names into kind, language, setup, method and subset.
    A table from before intervals were tidied (no ci_low/ci_high) loads with empty intervals."""
    if not Path(path).is_file():
        raise GrowupError(f"no evaluation table at {str(path)!r}: run `growup eval tidy` first")
    df = pd.read_csv(path, dtype={"step": str})
    for column in ("ci_low", "ci_high"):
        if column not in df:
            df[column] = float("nan")
    return with_names(seed_means(df))


def with_names(df: pd.DataFrame) -> pd.DataFrame:
    return df.join(df["model"].apply(parse_model).apply(pd.Series))


def seed_means(df: pd.DataFrame) -> pd.DataFrame:
    """A table with seed replicates (its `seeds` column, `growup.evaluate.tidy`) as one row per
    recipe: the plain run name, value and interval of the mean over seeds (the two-level
    interval), and `seed_min`/`seed_max`, the seeds' spread. A table of one seed is unchanged."""
    if "seeds" not in df:
        return df
    numbers = {
        c: pd.to_numeric(df[c], errors="coerce")
        for c in ("seeds", "seed_mean", "seed_ci_low", "seed_ci_high")
    }
    df = df.assign(_recipe=df["model"].map(lambda m: split_replicate(m)[0]), **numbers)
    many = df["seeds"].fillna(1) > 1
    keys = ["_recipe", "step", "task", "metric"]
    spread = df[many].groupby(keys)["value"].agg(seed_min="min", seed_max="max").reset_index()
    first = df[many].sort_values("model", key=lambda m: m.str.len()).drop_duplicates(keys)
    first = first.assign(model=first["_recipe"], value=first["seed_mean"])
    first = first.assign(ci_low=first["seed_ci_low"], ci_high=first["seed_ci_high"]).merge(spread, on=keys)
    out = pd.concat([df[~many], first], ignore_index=True).drop(columns=["_recipe"])
    return out.sort_values(["model", "step", "task", "metric"], kind="stable").reset_index(drop=True)


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
        "replicate": parsed.replicate,
    }


def final_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Each model's last evaluated point (the highest step, or 'final')."""
    order = df["step"].map(lambda s: int(s) if str(s).isdigit() else 1 << 62)
    last = df.assign(_o=order).groupby("model")["_o"].transform("max")
    return df[order == last]


def metric(df: pd.DataFrame, name: str = "acc") -> pd.DataFrame:
    return df[df["metric"] == name]
