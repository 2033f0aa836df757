"""What a drawn figure plots, read back from its matplotlib objects (line data, bands, error bars,
heatmap arrays, cell labels), against what the tidy table says it must plot, computed here from
the rows of evals.csv by the figure's stated rule (not through growup.report's helpers)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.collections import PolyCollection
from matplotlib.colors import to_rgb
from matplotlib.container import BarContainer
from matplotlib.figure import Figure
from synthetic_evals import START

from growup.report.figures import COLORS

SETUPS = tuple(START)
TOL = 1e-9
ROUNDED = 0.5e-4 + 1e-12  # the merge table rounds to 4 decimals


def order(step: str) -> int:
    return int(step) if str(step).isdigit() else 1 << 62  # "final" after every numbered step


def acc(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["metric"] == "acc"]


def expected_curve(df: pd.DataFrame, run: str, setup: str, keep) -> pd.DataFrame:
    """A run's points on the rows `keep` selects, after its setup's start model's last evaluation
    placed at 0 adaptation tokens and FLOPs: one point per token count (the mean of its rows)."""
    rows = acc(df)[keep(acc(df))]
    own = rows[rows["model"] == run]
    start = rows[rows["model"] == START[setup]]
    if not start.empty:
        last = start[start["step"].map(order) == start["step"].map(order).max()].assign(tokens=0, flops=0)
        own = pd.concat([last, own])
    if own.empty:
        return pd.DataFrame(columns=["tokens", "flops", "value", "low", "high"])
    points = own.groupby("tokens").agg(
        flops=("flops", "first"), value=("value", "mean"), low=("ci_low", "mean"), high=("ci_high", "mean")
    )
    return points.reset_index().sort_values("tokens")


def lines(ax) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The labelled lines of an axes: label -> (x, y)."""
    return {
        line.get_label(): (np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float))
        for line in ax.get_lines()
        if not line.get_label().startswith("_")
    }


def markers(ax) -> list[tuple[float, float]]:
    """Unlabelled single points (the FLOP-matched rings)."""
    return sorted(
        (float(line.get_xdata()[0]), float(line.get_ydata()[0]))
        for line in ax.get_lines()
        if line.get_label().startswith("_") and len(line.get_xdata()) == 1
    )


def band(ax, setup: str) -> dict[float, tuple[float, float]]:
    """The interval band of a setup (its colour): x -> (low, high), from the polygon's vertices."""
    (poly,) = [
        c
        for c in ax.collections
        if isinstance(c, PolyCollection) and np.allclose(c.get_facecolor()[0][:3], to_rgb(COLORS[setup]))
    ]
    found: dict[float, list[float]] = {}
    for x, y in poly.get_paths()[0].vertices:
        found.setdefault(round(float(x), 6), []).append(float(y))
    return {x: (min(ys), max(ys)) for x, ys in found.items()}


def assert_curve(ax, setup: str, x: str, want: pd.DataFrame) -> None:
    got_x, got_y = lines(ax)[setup]
    np.testing.assert_allclose(got_x, want[x].to_numpy(float), rtol=0, atol=TOL)
    np.testing.assert_allclose(got_y, want["value"].to_numpy(float), rtol=0, atol=TOL)
    if want["low"].notna().all():
        got = band(ax, setup)
        for xv, low, high in zip(want[x], want["low"], want["high"], strict=True):
            assert np.allclose(got[round(float(xv), 6)], (low, high), atol=TOL), (setup, xv)


def check_data_efficiency(fig: Figure, df: pd.DataFrame) -> None:
    langs = sorted(df.loc[df["kind"] == "language", "run_language"].dropna().unique())
    assert len(fig.axes) == 2 * len(langs)
    for r, lang in enumerate(langs):
        tokens_ax, flops_ax = fig.axes[2 * r], fig.axes[2 * r + 1]
        assert tokens_ax.get_ylabel() == f"{lang} MultiBLiMP acc"
        target = lambda rows, lang=lang: (rows["benchmark"] == "multiblimp") & (rows["language"] == lang)  # noqa: E731
        curves = {s: expected_curve(df, f"{lang}-{s}", s, target) for s in SETUPS}
        assert set(lines(tokens_ax)) == set(lines(flops_ax)) == {s for s, c in curves.items() if len(c)}
        for setup, want in curves.items():
            if len(want):
                assert_curve(tokens_ax, setup, "tokens", want)
                assert_curve(flops_ax, setup, "flops", want)
        base = curves["1x"]["flops"].max()
        rings = [
            (base, float(np.interp(base, c["flops"], c["value"])))
            for s, c in curves.items()
            if s != "1x" and len(c) and c["flops"].max() >= base
        ]
        assert np.allclose(markers(flops_ax), sorted(rings), atol=TOL), (lang, markers(flops_ax), rings)


def check_english_retention(fig: Figure, df: pd.DataFrame) -> None:
    english = acc(df[df["language"] == "eng"])
    benches = [b for b in ("blimp", "multiblimp") if b in set(english["benchmark"])]
    assert len(fig.axes) == len(benches)
    runs = df[df["kind"] == "language"]
    for ax, bench in zip(fig.axes, benches, strict=True):
        keep = lambda rows, bench=bench: (rows["benchmark"] == bench) & (rows["language"] == "eng")  # noqa: E731
        for setup in SETUPS:
            names = sorted(runs.loc[runs["setup"] == setup, "model"].unique())
            curves = [c for c in (expected_curve(df, n, setup, keep) for n in names) if len(c)]
            if not curves:
                assert setup not in lines(ax)
                continue
            mean = pd.concat(curves).groupby("tokens", as_index=False)[["value", "low", "high"]].mean()
            assert_curve(ax, setup, "tokens", mean)


def combined(rows: pd.DataFrame) -> tuple[float, float, float]:
    """Mean of per-task accuracies; half-width: the tasks' half-widths in quadrature, over n."""
    mean = rows["value"].mean()
    half = math.sqrt(sum(((rows["ci_high"] - rows["ci_low"]) / 2) ** 2)) / len(rows)
    return mean, mean - half, mean + half


def merge_scores(df: pd.DataFrame) -> dict[tuple[str, str, str], tuple[float, float, float]]:
    """(setup, method, subset) -> mean MultiBLiMP accuracy over the merge's languages, interval."""
    merges = acc(df[df["kind"] == "merge"])
    scores = {}
    for (setup, method, subset), rows in merges.groupby(["setup", "method", "subset"]):
        target = rows[(rows["benchmark"] == "multiblimp") & rows["language"].isin(subset.split("+"))]
        scores[(setup, method, subset)] = combined(target)
    return scores


def check_merge_heatmaps(fig: Figure, df: pd.DataFrame) -> None:
    scores = merge_scores(df)
    setups = [s for s in SETUPS if any(k[0] == s for k in scores)]
    methods = sorted({k[1] for k in scores})
    subsets = sorted({k[2] for k in scores}, key=lambda s: (s.count("+"), s))
    panels = [ax for ax in fig.axes if ax.images]
    assert [ax.get_title(loc="left") for ax in panels] == [f"merges, {s}" for s in setups]
    for ax, setup in zip(panels, setups, strict=True):
        got = np.ma.filled(ax.images[0].get_array().astype(float), np.nan)
        want = np.array([[scores.get((setup, m, s), (np.nan,))[0] for s in subsets] for m in methods])
        assert got.shape == want.shape and np.array_equal(np.isnan(got), np.isnan(want)), setup
        np.testing.assert_allclose(got[~np.isnan(want)], want[~np.isnan(want)], rtol=0, atol=ROUNDED)
        assert [t.get_text() for t in ax.get_yticklabels()] == methods
        half = np.array([[scores.get((setup, m, s), (np.nan,) * 3) for s in subsets] for m in methods])
        half = (half[..., 2] - half[..., 1]) / 2
        cells = {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text() for t in ax.texts}
        assert cells.keys() == {(i, j) for i, j in zip(*np.nonzero(~np.isnan(want)), strict=True)}
        for (i, j), text in cells.items():  # the value, and its interval's half-width under it
            value, _, plus = text.partition("\n±")
            assert abs(float(value) - want[i, j]) <= 0.005 + ROUNDED, (setup, i, j, text)
            assert abs(float(plus) - half[i, j]) <= 0.005 + ROUNDED, (setup, i, j, text)
    assert [t.get_text() for t in panels[-1].get_xticklabels()] == subsets


def check_merged_vs_joint(fig: Figure, df: pd.DataFrame) -> None:
    scores = merge_scores(df)
    widest = max(s.count("+") for _, _, s in scores)
    methods = sorted({m for _, m, s in scores if s.count("+") == widest})
    joint_rows = acc(
        df[(df["kind"] == "multilingual") & (df["benchmark"] == "multiblimp") & (df["language"] != "eng")]
    )
    joint = {}
    for setup, rows in joint_rows.groupby("setup"):
        joint[setup] = combined(rows[rows["step"].map(order) == rows["step"].map(order).max()])
    (ax,) = fig.axes
    bars = [c for c in ax.containers if isinstance(c, BarContainer)]  # each with its error bar
    assert len(bars) == len(SETUPS) * (len(methods) + 1)
    k = 0
    for setup in SETUPS:
        by_method = {m: v for (st, m, sub), v in scores.items() if st == setup and sub.count("+") == widest}
        for name in [*methods, "joint"]:
            want = joint.get(setup) if name == "joint" else by_method.get(name)
            container = bars[k]
            k += 1
            height = container.patches[0].get_height()
            if want is None:
                assert math.isnan(height), (setup, name)
                continue
            atol = TOL if name == "joint" else ROUNDED
            assert math.isclose(height, want[0], abs_tol=atol), (setup, name, height, want)
            assert container.errorbar is not None, f"{setup} {name}: no error bar"
            (segment,) = container.errorbar.lines[2][0].get_segments()
            assert np.allclose(sorted(segment[:, 1]), want[1:], atol=atol), (setup, name, segment, want)


CHECKS = {
    "data_efficiency": check_data_efficiency,
    "english_retention": check_english_retention,
    "merge_heatmaps": check_merge_heatmaps,
    "merged_vs_joint": check_merged_vs_joint,
}


def check_merge_leaderboard(fig: Figure, board: pd.DataFrame) -> None:
    """Per setup, each method's point (target left, English right) at its value, rank 1 on top."""
    rows = board[board["subset"] == "all"]
    setups = [s for s in SETUPS if s in set(rows["setup"])]
    panels = [ax for ax in fig.axes if ax.get_title(loc="left")]
    assert len(panels) == len(setups)
    for ax, setup in zip(panels, setups, strict=True):
        part = rows[rows["setup"] == setup].sort_values("rank")
        dots = [ln for ln in ax.get_lines() if ln.get_marker() == "o" and len(ln.get_xdata()) == 1]
        got = sorted((round(float(ln.get_ydata()[0])), float(ln.get_xdata()[0])) for ln in dots)
        want = sorted(zip(range(len(part))[::-1], part["target_acc"], strict=True))
        assert len(got) == len(want), setup
        for (gy, gx), (wy, wx) in zip(got, want, strict=True):
            assert gy == wy and math.isclose(gx, wx, abs_tol=TOL), (setup, gy, gx, wy, wx)


def check_figure(name: str, fig: Figure, df: pd.DataFrame, leaderboard: pd.DataFrame | None = None) -> None:
    """Assert that figure `name` plots exactly what the tidy table `df` (or, for the merge
    leaderboard, the leaderboard table it draws) holds."""
    if name == "merge_leaderboard":
        check_merge_leaderboard(fig, leaderboard)
    else:
        CHECKS[name](fig, df)


def check_files(
    name: str, df: pd.DataFrame, folder: Path, scratch: Path, leaderboard: pd.DataFrame | None = None
) -> None:
    """`folder`/<name>.pdf and .png are what `render` writes from `df` (byte for byte), and the
    figure it saved plots `df`: the figure is caught on its way into the files."""
    import matplotlib.pyplot as plt

    from growup.report import figures

    drawn, draw = [], figures.draw
    figures.draw = lambda *a: drawn.append(draw(*a)) or drawn[-1]
    try:
        paths = figures.render(name, df, scratch, leaderboard=leaderboard)
    finally:
        figures.draw = draw
    try:
        (fig,) = drawn
        check_figure(name, fig, df, leaderboard)
        for path in paths:
            same = path.read_bytes() == (folder / path.name).read_bytes()
            assert same, f"{path.name} is not the figure of the table"
    finally:
        plt.close(fig)
