"""Each figure plots the tidy table: lines, bands, rings, heatmap cells and bars with their error
bars, read back from the drawn Figure, equal the values evals.csv holds (figure_checks.py)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pytest
from figure_checks import check_figure
from synthetic_evals import study

from growup.report.figures import draw
from growup.study import FIGURES

LANGUAGES = ("ekk", "fao", "isl")


@pytest.fixture(scope="module")
def evals():
    # two subsets (one cell of the heatmap empty for no method), three languages, two methods
    df, _ = study("better", n=50, languages=LANGUAGES, subsets=["ekk+fao", "ekk+fao+isl"])
    return df


@pytest.mark.parametrize("name", FIGURES)
def test_each_figure_plots_the_tidy_table(evals, name):
    fig = draw(name, evals)
    try:
        check_figure(name, fig, evals)
    finally:
        plt.close(fig)


@pytest.mark.parametrize("name", FIGURES)
def test_the_check_fails_on_another_table(evals, name):
    """The readback is not vacuous: a figure drawn from a table with one model's scores changed
    does not pass the check against the unchanged table."""
    changed = evals.copy()
    kind = {"english_retention": "language", "data_efficiency": "language"}.get(name, "merge")
    if name == "merged_vs_joint":
        rows = changed["model"].str.contains("ekk+fao+isl", regex=False)
    else:
        rows = changed["kind"] == kind
    rows &= changed["model"] == changed.loc[rows, "model"].iloc[-1]
    changed.loc[rows, ["value", "ci_low", "ci_high"]] -= 0.05
    fig = draw(name, changed)
    try:
        with pytest.raises(AssertionError):
            check_figure(name, fig, evals)
    finally:
        plt.close(fig)
