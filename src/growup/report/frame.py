"""The tidy evaluation table (results/tables/evals.csv) as a DataFrame, with the study's naming."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from growup.errors import GrowupError

SETUPS = ("1x", "1x-cloned", "2x")
# the model each setup's adaptation runs start from (its step 0)
START = {"1x": "english-1x", "1x-cloned": "english-1x-cloned", "2x": "english-2x"}


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
    """`ekk-2x` → language run; `merge-2x-ties-ekk+fao` → merge; `english-1x` → base."""
    if name.startswith("merge-"):
        _, rest = name.split("-", 1)
        setup = next(s for s in sorted(SETUPS, key=len, reverse=True) if rest.startswith(s + "-"))
        method, subset = rest[len(setup) + 1 :].rsplit("-", 1)
        return {"kind": "merge", "run_language": None, "setup": setup, "method": method, "subset": subset}
    lang, _, setup = name.partition("-")
    kind = {"english": "base", "multilingual": "joint", "seed": "base"}.get(lang, "language")
    return {"kind": kind, "run_language": lang, "setup": setup or None, "method": None, "subset": None}


def final_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Each model's last evaluated point (the highest step, or 'final')."""
    order = df["step"].map(lambda s: int(s) if str(s).isdigit() else 1 << 62)
    last = df.assign(_o=order).groupby("model")["_o"].transform("max")
    return df[order == last]


def metric(df: pd.DataFrame, name: str = "acc") -> pd.DataFrame:
    return df[df["metric"] == name]
