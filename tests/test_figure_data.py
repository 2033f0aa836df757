"""Each figure plots the tidy table: lines, bands, rings, heatmap cells and bars with their error
bars, read back from the drawn Figure, equal the values evals.csv holds (figure_checks.py)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import pytest
from figure_checks import check_figure
from synthetic_evals import START, study

from growup.report.figures import draw
from growup.report.leaderboard import leaderboard
from growup.study import FIGURES, LEADERBOARD

LANGUAGES = ("ekk", "fao", "isl")


def with_a_later_start_step(df: pd.DataFrame) -> pd.DataFrame:
    """Each setup's start model evaluated again later in its own training (step 40, 0.1 higher), so
    a curve that starts from any evaluation of it but its last one plots other values."""
    later = df[df["model"].isin(START.values())].assign(step="40", tokens=400, total_tokens=400)
    later[["value", "ci_low", "ci_high"]] += 0.1
    return pd.concat([df, later], ignore_index=True)


@pytest.fixture(scope="module")
def evals():
    # two subsets (one cell of the heatmap empty for no method), three languages, two methods
    df, pairs = study("better", n=50, languages=LANGUAGES, subsets=["ekk+fao", "ekk+fao+isl"])
    return with_a_later_start_step(df), leaderboard(df, pairs, confidence=0.95, resamples=200, seed=0)


def drawn(name, df, board):
    return draw(name, df, board if name == LEADERBOARD else None)


@pytest.mark.parametrize("name", FIGURES)
def test_each_figure_plots_the_tidy_table(evals, name):
    evals, board = evals
    fig = drawn(name, evals, board)
    try:
        check_figure(name, fig, evals, board)
    finally:
        plt.close(fig)


@pytest.mark.parametrize("name", FIGURES)
def test_the_check_fails_on_another_table(evals, name):
    """The readback is not vacuous: a figure drawn from a table with one model's scores changed
    does not pass the check against the unchanged table (the leaderboard: its table)."""
    evals, board = evals
    fig = (
        drawn(name, evals, moved_board(board))
        if name == LEADERBOARD
        else drawn(name, changed(evals, name), board)
    )
    try:
        with pytest.raises(AssertionError):
            check_figure(name, fig, evals, board)
    finally:
        plt.close(fig)


def moved_board(board):
    """The leaderboard with one method's mean target accuracy 0.05 lower."""
    moved = board.copy()
    moved.loc[moved.index[moved["subset"] == "all"][-1], "target_acc"] -= 0.05
    return moved


def changed(evals, name):
    """The tidy table with the scores of one model that figure `name` draws 0.05 lower."""
    out = evals.copy()
    kind = {"english_retention": "language", "data_efficiency": "language"}.get(name, "merge")
    if name == "merged_vs_joint":
        rows = out["model"].str.contains("ekk+fao+isl", regex=False)
    else:
        rows = out["kind"] == kind
    rows &= out["model"] == out.loc[rows, "model"].iloc[-1]
    out.loc[rows, ["value", "ci_low", "ci_high"]] -= 0.05
    return out
