"""Figures from the tidy evaluation table alone (no model is read), as PDF and PNG, each
accuracy with its interval (evals.csv's bootstrap interval, as a band or an error bar).

1. data_efficiency: per language, target-language MultiBLiMP accuracy against training tokens and
   against training FLOPs of the adaptation run, for 1x, 1x-cloned and 2x; a ring marks the point
   of each upscaled run whose FLOPs match the 1x run's final FLOPs (interpolated).
2. english_retention: English BLiMP and MultiBLiMP-eng against tokens, per setup (mean over languages).
3. merge_heatmaps: mean target accuracy of each merge (± its interval's half-width), methods ×
   subsets, one panel per setup.
4. merged_vs_joint: per setup, each method's merge of all languages against joint multilingual training.
5. merge_leaderboard: per setup, every method ranked by mean target accuracy (and its English), with
   intervals, joint training's band and each method's difference from the paper's best method
   (drawn from results/tables/merge_leaderboard.csv, `growup.report.leaderboard`).

Every figure is laid out by matplotlib's constrained layout and sized from its content (panels,
methods, subsets); `layout_problems` finds clipped or overlapping labels on a drawn figure.
"""

from __future__ import annotations

import argparse
import logging
import os
from itertools import combinations
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.transforms import Bbox

from growup.errors import GrowupError
from growup.io import atomic_file
from growup.report.frame import final_rows, load, metric
from growup.report.leaderboard import ALL, BEYOND, PAPER
from growup.report.stats import combined_interval
from growup.report.tables import merge_table
from growup.study import (
    BASE_SETUP,
    FIGURES,
    LEADERBOARD,
    MULTILINGUAL,
    SETUPS,
    load_job,
    run_name,
    setup_start,
    subset_languages,
)

log = logging.getLogger(__name__)
COLORS = dict(zip(SETUPS, ("#4C72B0", "#DD8452", "#55A868"), strict=True))  # one colour per setup
BAND_ALPHA = 0.18
SEED_SPREAD = ("seed_min", "seed_max")  # evals.csv's lowest and highest seed (growup.report.frame)
SEED_LABEL = "lowest to highest seed"
# applied while a figure is drawn and saved (draw, render), never to the importing process
STYLE = {
    "figure.dpi": 110,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "font.size": 9,
    "svg.hashsalt": "growup",
}


def subplots(*grid: int, figsize: tuple[float, float], **kw: Any) -> tuple[Figure, Any]:
    """A figure and its axes on an Agg canvas of its own: no pyplot state, no global backend."""
    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots(*grid, **{k: v for k, v in kw.items() if k != "layout"})


def curve(df: pd.DataFrame, run: str, setup: str, task_filter) -> pd.DataFrame:
    """A run's learning curve on the rows `task_filter` keeps, starting at its setup's start model:
    tokens, flops, value and its interval (low, high)."""
    rows = metric(df)
    rows = rows[task_filter(rows)]
    points = rows[rows["model"] == run].copy()
    start = rows[rows["model"] == setup_start(setup)]
    if not start.empty:
        first = start.loc[[start["step"].map(lambda s: int(s) if s.isdigit() else 1 << 62).idxmax()]].copy()
        first[["tokens", "flops"]] = 0
        points = pd.concat([first, points])
    spread = (
        {"seed_min": ("seed_min", "mean"), "seed_max": ("seed_max", "mean")} if "seed_min" in points else {}
    )
    points = points.groupby("tokens", as_index=False).agg(
        value=("value", "mean"),
        low=("ci_low", "mean"),
        high=("ci_high", "mean"),
        flops=("flops", "first"),
        **spread,
    )
    return points.sort_values("tokens")


def _line(ax: Axes, x: pd.Series, c: pd.DataFrame, setup: str) -> None:
    ax.plot(x, c["value"], "o-", ms=3, color=COLORS[setup], label=setup)
    if c["low"].notna().all():
        ax.fill_between(x, c["low"], c["high"], color=COLORS[setup], alpha=BAND_ALPHA, lw=0)
    # the setups' seed bars side by side at a shared point (a dodge of 1% of the axis per setup)
    dodge = (SETUPS.index(setup) - 1) * 0.01 * (float(x.max() - x.min()) if len(x) else 0.0)
    _seed_range(ax, x + dodge, c, COLORS[setup])


def _seed_range(ax: Axes, x: Any, c: pd.DataFrame, color: Any, width: float = 2.2) -> None:
    """With seed replicates: the lowest to the highest seed at each point, as a bar (evals.csv's
    seed_min/seed_max); the line is the mean over seeds and the band its two-level interval."""
    if "seed_min" not in c or not c["seed_min"].notna().any():
        return
    ax.vlines(x, c["seed_min"], c["seed_max"], color=color, lw=width, alpha=0.75, zorder=3)


def _seed_legend(fig: Figure, df: pd.DataFrame) -> None:
    """A note under the figure saying what the seed bars are, when there are replicates."""
    if "seeds" in df and (df["seeds"].fillna(1) > 1).any():
        seeds = int(df["seeds"].max())
        fig.supxlabel(
            f"line: mean over {seeds} training seeds; band: its interval over seeds and pairs; "
            "bar: lowest to highest seed",
            fontsize=7,
            color="0.35",
        )


def data_efficiency(df: pd.DataFrame) -> Figure:
    langs = sorted(df.loc[df["kind"] == "language", "run_language"].dropna().unique())
    fig, axes = subplots(
        len(langs), 2, figsize=(8, 0.4 + 2.0 * len(langs)), squeeze=False, sharey="row", layout="constrained"
    )
    for row, lang in zip(axes, langs, strict=True):
        target = lambda r, lang=lang: (r["benchmark"] == "multiblimp") & (r["language"] == lang)  # noqa: E731
        curves = {s: curve(df, run_name(lang, s), s, target) for s in SETUPS}
        base = curves[BASE_SETUP]
        base_flops = base["flops"].max() if not base.empty else None
        for setup, c in curves.items():
            if c.empty:
                continue
            _line(row[0], c["tokens"], c, setup)
            _line(row[1], c["flops"], c, setup)
            if setup != BASE_SETUP and base_flops and c["flops"].max() >= base_flops:
                y = np.interp(base_flops, c["flops"], c["value"])
                row[1].plot([base_flops], [y], "o", ms=9, mfc="none", color=COLORS[setup])
        row[0].set_ylabel(f"{lang} MultiBLiMP acc")
    axes[-1][0].set_xlabel("adaptation tokens")
    axes[-1][1].set_xlabel("adaptation training FLOPs (6N + attention)")
    axes[0][0].set_title("per token")
    axes[0][1].set_title("per FLOP (rings: FLOP-matched to 1x final)")
    _legend(fig, axes[0][0])
    _seed_legend(fig, df)
    return fig


def _legend(fig: Figure, ax: Axes) -> None:
    """One legend for the figure, above the panels, where it hides no curve or band."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside upper center", ncol=len(labels), frameon=False, fontsize=8)


def english_retention(df: pd.DataFrame) -> Figure:
    benches = [("blimp", "English BLiMP (single error)"), ("multiblimp", "MultiBLiMP eng")]
    present = set(metric(df[df["language"] == "eng"])["benchmark"])
    benches = [b for b in benches if b[0] in present] or benches
    fig, axes = subplots(1, len(benches), figsize=(4 * len(benches), 3), squeeze=False, layout="constrained")
    runs = df[df["kind"] == "language"]
    for ax, (bench, title) in zip(axes[0], benches, strict=True):
        english = lambda r, bench=bench: (r["benchmark"] == bench) & (r["language"] == "eng")  # noqa: E731
        for setup in SETUPS:
            names = sorted(runs.loc[runs["setup"] == setup, "model"].unique())
            curves = [curve(df, n, setup, english) for n in names]
            curves = [c for c in curves if not c.empty]
            if not curves:
                continue
            # every run is scored on the same English pairs: the mean of the runs' bounds is a
            # conservative band for the mean curve
            columns = [c for c in ("value", "low", "high", "seed_min", "seed_max") if c in curves[0]]
            mean = pd.concat(curves).groupby("tokens", as_index=False)[columns].mean()
            _line(ax, mean["tokens"], mean, setup)
        ax.set_title(title)
        ax.set_xlabel("adaptation tokens")
    axes[0][0].set_ylabel("accuracy (mean over languages)")
    _legend(fig, axes[0][0])
    _seed_legend(fig, df)
    return fig


def merge_heatmaps(df: pd.DataFrame) -> Figure:
    """One row per setup (the subsets on a shared x axis, labelled once at the bottom), cells
    sized so that a value and its interval's half-width fit, one colour scale for every panel."""
    table = merge_table(df)
    table = table.assign(half=(table["target_acc_high"] - table["target_acc_low"]) / 2)
    setups = [s for s in SETUPS if s in set(table["setup"])] or list(SETUPS)
    methods = sorted(table["method"].unique()) if not table.empty else []
    subsets = (
        sorted(table["subset"].unique(), key=lambda s: (len(subset_languages(s)), s))
        if not table.empty
        else []
    )
    longest = max((len(s) for s in subsets), default=4)
    width = 1.6 + 0.1 * max((len(m) for m in methods), default=4) + 0.42 * max(len(subsets), 3)
    height = 0.5 + len(setups) * (0.45 + 0.36 * max(len(methods), 1)) + 0.065 * longest
    fig, axes = subplots(
        len(setups), 1, figsize=(max(width, 4.5), height), squeeze=False, sharex=True, layout="constrained"
    )
    vmin, vmax = (table["target_acc"].min(), table["target_acc"].max()) if not table.empty else (0, 1)
    cmap, im = matplotlib.colormaps["viridis"], None
    for ax, setup in zip(axes[:, 0], setups, strict=True):
        grid, half = (
            table[table["setup"] == setup]
            .pivot(index="method", columns="subset", values=column)
            .reindex(index=methods, columns=subsets)
            for column in ("target_acc", "half")
        )
        ax.grid(False)
        ax.set_title(f"merges, {setup}", fontsize=9, loc="left")
        if grid.empty:
            continue
        im = ax.imshow(grid.values, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
        ax.set_yticks(range(len(methods)), methods, fontsize=8)
        for (i, j), v in np.ndenumerate(grid.values):
            if np.isnan(v):
                continue
            shade = cmap((v - vmin) / (vmax - vmin) if vmax > vmin else 0.5)
            dark = 0.299 * shade[0] + 0.587 * shade[1] + 0.114 * shade[2] < 0.55
            h = half.values[i, j]
            text = f"{v:.2f}" if np.isnan(h) else f"{v:.2f}\n±{h:.2f}"
            ax.text(
                j,
                i,
                text,
                ha="center",
                va="center",
                fontsize=6,
                linespacing=1.1,
                color="white" if dark else "black",
            )
    bottom = axes[-1, 0]
    bottom.set_xticks(range(len(subsets)), subsets, rotation=90, fontsize=8)
    bottom.set_xlabel("merged languages")
    if im is not None:
        label = "mean target MultiBLiMP acc (± half its interval)"
        fig.colorbar(im, ax=axes[:, 0].tolist(), shrink=0.9, label=label, pad=0.02)
    return fig


def merged_vs_joint(df: pd.DataFrame) -> Figure:
    table = merge_table(df)
    full = table[table["languages"] == table["languages"].max()] if not table.empty else table
    joint_rows = final_rows(
        metric(
            df[(df["kind"] == MULTILINGUAL) & (df["benchmark"] == "multiblimp") & (df["language"] != "eng")]
        )
    )
    joint = {
        setup: combined_interval(rows[["task", "value", "ci_low", "ci_high"]].itertuples(index=False))
        for setup, rows in joint_rows.groupby("setup")
    }
    joint_seeds = (
        {
            setup: (rows["seed_min"].mean(), rows["seed_max"].mean())
            for setup, rows in joint_rows.groupby("setup")
        }
        if "seed_min" in joint_rows
        else {}
    )
    methods = sorted(full["method"].unique()) if not full.empty else []
    fig, ax = subplots(figsize=(7, 3.4), layout="constrained")
    width = 0.8 / (len(methods) + 1)
    for i, setup in enumerate(SETUPS):
        bars = []
        for method in methods:
            v = full[(full["setup"] == setup) & (full["method"] == method)]
            bars.append(
                tuple(v[c].iloc[0] for c in ("target_acc", "target_acc_low", "target_acc_high"))
                if len(v)
                else (np.nan,) * 3
            )
        bars.append(joint.get(setup, (np.nan,) * 3))
        spread = [
            tuple(v[c].iloc[0] for c in ("target_acc_seed_min", "target_acc_seed_max"))
            if len(v := full[(full["setup"] == setup) & (full["method"] == m)])
            and "target_acc_seed_min" in full
            else (np.nan, np.nan)
            for m in methods
        ] + [joint_seeds.get(setup, (np.nan, np.nan))]
        for j, (value, low, high) in enumerate(bars):
            is_joint = j == len(methods)
            if not np.isnan(spread[j][0]):  # the seeds' range, beside the interval's whisker
                first = not any(c.get_label() == SEED_LABEL for c in ax.collections)
                ax.vlines(
                    i + j * width + width / 4,
                    *spread[j],
                    color="0.85" if is_joint else "black",
                    lw=2.4,
                    zorder=3,
                    label=SEED_LABEL if first else None,
                )
            ax.bar(
                i + j * width,
                value,
                width,
                color="black" if is_joint else matplotlib.colormaps["tab10"](j),
                label=(("joint multilingual" if is_joint else methods[j]) if i == 0 else None),
                yerr=None if np.isnan(low) else [[value - low], [high - value]],
                error_kw={"elinewidth": 0.8, "capsize": 1.5, "ecolor": "0.4"},
            )
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(SETUPS))], SETUPS)
    ax.set_ylabel("mean target MultiBLiMP acc")
    ax.set_title("merge of all languages vs joint training", loc="left")
    ax.legend(frameon=False, fontsize=7, ncol=1, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


FAMILY_COLORS = {PAPER: "#4C72B0", BEYOND: "#DD8452"}  # the paper's methods, and those beyond it


def merge_leaderboard(table: pd.DataFrame, confidence: float = 0.95) -> Figure:
    """From merge_leaderboard.csv: per setup (a row), every method's mean target accuracy and
    English accuracy over the subsets all methods merged, best first, each with its interval;
    joint multilingual training as a dashed line in its band; beside each method, its difference
    from the paper's best method, starred when decided (Holm-adjusted p below 1 - confidence)."""
    rows = table[table["subset"] == ALL]
    setups = [s for s in SETUPS if s in set(rows["setup"])] or list(SETUPS)
    most = int(rows.groupby("setup").size().max()) if len(rows) else 1
    fig, axes = subplots(
        len(setups),
        2,
        figsize=(8.4, 0.7 + len(setups) * (0.55 + 0.26 * most)),
        squeeze=False,
        sharex="col",
        gridspec_kw={"width_ratios": [1.7, 1]},
        layout="constrained",
    )
    alpha = 1 - confidence
    for (left, right), setup in zip(axes, setups, strict=True):
        part = rows[rows["setup"] == setup].sort_values("rank")
        y = np.arange(len(part))[::-1]  # rank 1 on top
        for ax, name in ((left, "target_acc"), (right, "english_acc")):
            ax.grid(axis="y", visible=False)
            for yi, r in zip(y, part.itertuples(index=False), strict=True):
                value, low, high = (getattr(r, name + s) for s in ("", "_low", "_high"))
                color = FAMILY_COLORS[r.family]
                err = None if np.isnan(low) else [[value - low], [high - value]]
                ax.errorbar([value], [yi], xerr=err, fmt="o", ms=4, color=color, elinewidth=1.4, capsize=2)
        if len(part) and not np.isnan(part["joint_acc"].iloc[0]):
            joint = part.iloc[0]
            left.axvspan(joint["joint_acc_low"], joint["joint_acc_high"], color="0.88", lw=0, zorder=0)
            left.axvline(joint["joint_acc"], color="0.35", ls="--", lw=1, label="joint multilingual")
        labels = []
        for r in part.itertuples(index=False):
            diff = "" if np.isnan(r.vs_best_paper) else f"  {r.vs_best_paper:+.3f}"
            star = "*" if diff and r.vs_best_paper_p_holm < alpha else ""
            labels.append(f"{r.method}{diff}{star}")
        left.set_yticks(y, labels, fontsize=8)
        right.set_yticks(y, [""] * len(y))
        best = part["best_paper_method"].iloc[0] if len(part) else ""
        subsets = int(part["subsets"].iloc[0]) if len(part) else 0
        left.set_title(
            f"{setup}: mean over {subsets} subset(s); beside each method: its difference from {best}",
            fontsize=8.5,
            loc="left",
        )
    axes[-1][0].set_xlabel("mean target MultiBLiMP acc")
    axes[-1][1].set_xlabel("mean English acc")
    handles = [
        matplotlib.lines.Line2D([], [], marker="o", ls="none", color=c, label=f)
        for f, c in FAMILY_COLORS.items()
    ]
    handles.append(matplotlib.lines.Line2D([], [], color="0.35", ls="--", label="joint multilingual"))
    fig.legend(
        handles=handles,
        loc="outside upper center",
        ncol=3,
        frameon=False,
        fontsize=8,
        title=f"{confidence:.0%} intervals; * the difference from the paper's best method is decided (Holm)",
        title_fontsize=8,
    )
    return fig


def _merge_seeds(table: pd.DataFrame, setup: str, method: str) -> tuple[float, float]:
    """The lowest and highest seed of a merge's mean target accuracy (NaN without replicates)."""
    row = table[(table["setup"] == setup) & (table["method"] == method)]
    if row.empty or "target_acc_seed_min" not in row:
        return np.nan, np.nan
    return row["target_acc_seed_min"].iloc[0], row["target_acc_seed_max"].iloc[0]


def _texts(fig: Figure) -> list[tuple[str, matplotlib.text.Text, int]]:
    """Every drawn, non-empty text of the figure with a name and the index of its axes: tick labels
    (those inside the view), axis labels, titles, legend entries, annotations."""
    found = []
    for n, ax in enumerate(fig.axes):
        for axis, name in ((ax.xaxis, "x"), (ax.yaxis, "y")):
            lo, hi = sorted(axis.get_view_interval())
            span = (hi - lo) * 1e-9
            for tick in axis.get_major_ticks():
                if not lo - span <= tick.get_loc() <= hi + span:
                    continue
                for label in (tick.label1, tick.label2):
                    if label.get_visible() and label.get_text():
                        found.append((f"axes {n} {name}-tick {label.get_text()!r}", label, n))
            for label, what in ((axis.label, "label"), (axis.offsetText, "offset")):
                if label.get_visible() and label.get_text():
                    found.append((f"axes {n} {name}-{what} {label.get_text()!r}", label, n))
        for title in (ax.title, ax._left_title, ax._right_title):
            if title.get_visible() and title.get_text():
                found.append((f"axes {n} title {title.get_text()!r}", title, n))
        legend = ax.get_legend()
        if legend is not None:
            found += [(f"axes {n} legend {t.get_text()!r}", t, n) for t in legend.get_texts() if t.get_text()]
        found += [
            (f"axes {n} text {t.get_text()!r}", t, n) for t in ax.texts if t.get_visible() and t.get_text()
        ]
    for legend in fig.legends:
        found += [(f"figure legend {t.get_text()!r}", t, -1) for t in legend.get_texts() if t.get_text()]
    return found


def layout_problems(fig: Figure, tolerance: float = 0.5) -> list[str]:
    """Labels the drawn figure clips at its canvas edge, draws over one another, or draws over
    another panel (a list of sentences; empty when the layout is readable). `tolerance`: pixels."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    canvas = fig.bbox
    texts = _texts(fig)
    boxes = [(name, text.get_window_extent(renderer)) for name, text, _ in texts]
    problems = [
        f"{name} is clipped by the canvas"
        for name, box in boxes
        if box.x0 < canvas.x0 - tolerance
        or box.y0 < canvas.y0 - tolerance
        or box.x1 > canvas.x1 + tolerance
        or box.y1 > canvas.y1 + tolerance
    ]
    shrunk = [
        (name, Bbox.from_extents(b.x0 + tolerance, b.y0 + tolerance, b.x1 - tolerance, b.y1 - tolerance))
        for name, b in boxes
    ]
    problems += [
        f"{a} overlaps {b}" for (a, box_a), (b, box_b) in combinations(shrunk, 2) if box_a.overlaps(box_b)
    ]
    panels = [(n, ax.get_window_extent(renderer)) for n, ax in enumerate(fig.axes) if ax.get_visible()]
    problems += [
        f"{name} runs into axes {n}"
        for (name, box), (_, _, owner) in zip(shrunk, texts, strict=True)
        for n, panel in panels
        if n != owner and box.overlaps(panel)
    ]
    return problems


# each figure of `growup.study.FIGURES` is drawn by the function of its name: from the tidy table,
# or (LEADERBOARD) from the leaderboard table
DRAW = {
    f.__name__: f
    for f in (data_efficiency, english_retention, merge_heatmaps, merged_vs_joint, merge_leaderboard)
}


def draw(
    name: str, df: pd.DataFrame, leaderboard: pd.DataFrame | None = None, confidence: float = 0.95
) -> Figure:
    """Figure `name`, drawn under the study's STYLE (scoped: the caller's settings are untouched)."""
    if name not in FIGURES:
        raise GrowupError(f"unknown figure {name!r}; figures: {list(FIGURES)}")
    with matplotlib.rc_context(STYLE):
        if name == LEADERBOARD:
            if leaderboard is None:
                raise GrowupError(
                    f"figure {name} draws results/tables/{LEADERBOARD}.csv: run `growup report leaderboard`"
                )
            return merge_leaderboard(leaderboard, confidence)
        return DRAW[name](df)


def render(
    name: str,
    df: pd.DataFrame,
    out_dir: str | os.PathLike[str],
    leaderboard: pd.DataFrame | None = None,
    confidence: float = 0.95,
) -> list[Path]:
    """Draw figure `name` and write <out_dir>/<name>.pdf and .png (byte-stable metadata); a label
    clipped or overlapping is logged as a warning."""
    with matplotlib.rc_context(STYLE):
        return save(draw(name, df, leaderboard, confidence), name, out_dir)


def save(fig: Figure, name: str, out_dir: str | os.PathLike[str]) -> list[Path]:
    """Write a drawn figure as <out_dir>/<name>.pdf and .png, atomically, with byte-stable
    metadata, under the study's STYLE; a label clipped or overlapping is logged as a warning."""
    with matplotlib.rc_context(STYLE):
        for problem in layout_problems(fig):
            log.warning("figure %s: %s", name, problem)
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = []
        for ext, meta in (("pdf", {"CreationDate": None, "ModDate": None}), ("png", {"Software": None})):
            path = out_dir / f"{name}.{ext}"
            with atomic_file(path) as tmp:
                fig.savefig(tmp, format=ext, metadata=meta)
            paths.append(path)
    return paths


def command(args: argparse.Namespace) -> None:
    """`growup report figure`: one figure (PDF + PNG), the only report verb that loads matplotlib."""
    study = load_job(args.spec, args.configfile, "report figure", name=args.name)
    extra = {}
    if args.name == LEADERBOARD:
        if not Path(args.leaderboard).is_file():
            raise GrowupError(
                f"no leaderboard at {args.leaderboard!r}: run `growup report leaderboard` first"
            )
        extra = {"leaderboard": pd.read_csv(args.leaderboard), "confidence": study.report.confidence}
    for path in render(args.name, load(args.evals_csv), args.out_dir, **extra):
        log.info("wrote %s", path)
