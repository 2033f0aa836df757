"""Every figure, drawn from a mini-study-shaped and a paper-shaped evaluation table, keeps each
label on the canvas and clear of every other label; the check itself fails on a broken layout."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
from synthetic_evals import every_subset, study

from growup.report.figures import draw, layout_problems
from growup.report.leaderboard import leaderboard
from growup.study import FIGURES

LANGUAGES = ("ekk", "fao", "isl", "fas", "swe")
METHODS = ("dare_ties", "linear", "multislerp", "task_arithmetic", "ties", "iso_c", "iso_cts", "tsv_m")
SHAPES = {
    # config/config.yaml: five languages, three subsets, eight methods
    "mini": {"subsets": ["ekk+fao", "isl+swe", "ekk+fao+isl+fas+swe"], "steps": (10, 20)},
    # config/paper.yaml: every subset of at least two languages (26)
    "paper": {"subsets": every_subset(LANGUAGES), "steps": (250, 500, 750, 1000)},
}


@pytest.fixture(scope="module", params=sorted(SHAPES))
def shaped(request):
    df, pairs = study("better", n=20, languages=LANGUAGES, methods=METHODS, **SHAPES[request.param])
    return df, leaderboard(df, pairs, confidence=0.95, resamples=100, seed=0)


@pytest.fixture(scope="module")
def evals(shaped):
    return shaped[0]


@pytest.mark.parametrize("name", FIGURES)
def test_no_label_is_clipped_or_overlapping(shaped, name):
    fig = draw(name, shaped[0], leaderboard=shaped[1])
    try:
        assert layout_problems(fig) == []
    finally:
        plt.close(fig)


def test_heatmaps_fill_their_canvas(evals):
    """The issue's heatmaps left most of the canvas empty: the panels now cover most of it."""
    fig = draw("merge_heatmaps", evals)
    fig.canvas.draw()
    area = sum(ax.get_window_extent().width * ax.get_window_extent().height for ax in fig.axes)
    plt.close(fig)
    assert area / (fig.bbox.width * fig.bbox.height) > 0.4


def broken_heatmaps(subsets: list[str]) -> plt.Figure:
    """The layout the issue reported: side-by-side square panels, no layout engine, 60° labels."""
    fig, axes = plt.subplots(1, 3, figsize=(6.5, 3))
    for ax in axes:
        ax.imshow(np.random.default_rng(0).random((len(METHODS), len(subsets))))
        ax.set_xticks(range(len(subsets)), subsets, rotation=60, ha="right", fontsize=7)
        ax.set_yticks(range(len(METHODS)), METHODS)
    return fig


def test_the_check_fails_on_a_broken_layout():
    fig = broken_heatmaps(SHAPES["mini"]["subsets"])
    problems = layout_problems(fig)
    plt.close(fig)
    assert any("clipped" in p and "x-tick" in p for p in problems)  # subset labels cut at the bottom
    assert any("y-tick" in p and "runs into axes" in p for p in problems)  # method labels over a neighbour

    fig, ax = plt.subplots(figsize=(4, 2), layout="constrained")
    ax.set_xticks(range(6), [f"a long subset label {i}" for i in range(6)])  # horizontal, crowded
    problems = layout_problems(fig)
    plt.close(fig)
    assert problems and all("overlaps" in p for p in problems)


def test_every_figure_of_the_grid_has_its_drawing_function():
    """`growup.study.FIGURES` names the figures; `report.figures` draws each by its function's
    name, so a figure added to one and not the other must fail here, not as a KeyError in a job."""
    from growup.report.figures import DRAW
    from growup.study import FIGURES

    assert set(DRAW) == set(FIGURES)
