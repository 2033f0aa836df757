"""Figures from the tidy evaluation table alone (no model is read), as PDF and PNG.

1. data_efficiency: per language, target-language MultiBLiMP accuracy against training tokens and
   against training FLOPs of the adaptation run, for 1x, 1x-cloned and 2x; a ring marks the point
   of each upscaled run whose FLOPs match the 1x run's final FLOPs (interpolated).
2. english_retention: English BLiMP and MultiBLiMP-eng against tokens, per setup (mean over languages).
3. merge_heatmaps: mean target accuracy of each merge, methods × subsets, one panel per setup.
4. merged_vs_joint: per setup, each method's merge of all languages against joint multilingual training.
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from growup.io import atomic_file
from growup.report.frame import SETUPS, START, metric
from growup.report.tables import merge_table

COLORS = {"1x": "#4C72B0", "1x-cloned": "#DD8452", "2x": "#55A868"}
FIGURES = ("data_efficiency", "english_retention", "merge_heatmaps", "merged_vs_joint")
plt.rcParams.update(
    {
        "figure.dpi": 110,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": True,
        "grid.alpha": 0.3,
        "font.size": 9,
        "svg.hashsalt": "growup",
    }
)


def curve(df: pd.DataFrame, run: str, setup: str, task_filter) -> pd.DataFrame:
    """A run's learning curve on the rows `task_filter` keeps, starting at its setup's start model."""
    rows = metric(df)
    rows = rows[task_filter(rows)]
    points = rows[rows["model"] == run].copy()
    start = rows[rows["model"] == START[setup]]
    if not start.empty:
        first = start.loc[[start["step"].map(lambda s: int(s) if s.isdigit() else 1 << 62).idxmax()]].copy()
        first[["tokens", "flops"]] = 0
        points = pd.concat([first, points])
    points = points.groupby("tokens", as_index=False).agg(value=("value", "mean"), flops=("flops", "first"))
    return points.sort_values("tokens")


def data_efficiency(df: pd.DataFrame) -> plt.Figure:
    langs = sorted(df.loc[df["kind"] == "language", "run_language"].dropna().unique())
    fig, axes = plt.subplots(len(langs), 2, figsize=(8, 2.2 * len(langs)), squeeze=False)
    for row, lang in zip(axes, langs, strict=True):
        target = lambda r, lang=lang: (r["benchmark"] == "multiblimp") & (r["language"] == lang)  # noqa: E731
        curves = {s: curve(df, f"{lang}-{s}", s, target) for s in SETUPS}
        base_flops = curves["1x"]["flops"].max() if not curves["1x"].empty else None
        for setup, c in curves.items():
            if c.empty:
                continue
            row[0].plot(c["tokens"], c["value"], "o-", ms=3, color=COLORS[setup], label=setup)
            row[1].plot(c["flops"], c["value"], "o-", ms=3, color=COLORS[setup], label=setup)
            if setup != "1x" and base_flops and c["flops"].max() >= base_flops:
                y = np.interp(base_flops, c["flops"], c["value"])
                row[1].plot([base_flops], [y], "o", ms=9, mfc="none", color=COLORS[setup])
        row[0].set_ylabel(f"{lang} MultiBLiMP acc")
    axes[-1][0].set_xlabel("adaptation tokens")
    axes[-1][1].set_xlabel("adaptation training FLOPs (6N + attention)")
    axes[0][0].set_title("per token")
    axes[0][1].set_title("per FLOP (rings: FLOP-matched to 1x final)")
    axes[0][0].legend(frameon=False)
    return fig


def english_retention(df: pd.DataFrame) -> plt.Figure:
    benches = [("blimp", "English BLiMP (single error)"), ("multiblimp", "MultiBLiMP eng")]
    fig, axes = plt.subplots(1, 2, figsize=(8, 3), squeeze=False)
    runs = df[df["kind"] == "language"]
    for ax, (bench, title) in zip(axes[0], benches, strict=True):
        english = lambda r, bench=bench: (r["benchmark"] == bench) & (r["language"] == "eng")  # noqa: E731
        for setup in SETUPS:
            names = sorted(runs.loc[runs["setup"] == setup, "model"].unique())
            curves = [curve(df, n, setup, english) for n in names]
            curves = [c for c in curves if not c.empty]
            if not curves:
                continue
            mean = pd.concat(curves).groupby("tokens", as_index=False)["value"].mean()
            ax.plot(mean["tokens"], mean["value"], "o-", ms=3, color=COLORS[setup], label=setup)
        ax.set_title(title)
        ax.set_xlabel("adaptation tokens")
    axes[0][0].set_ylabel("accuracy (mean over languages)")
    axes[0][0].legend(frameon=False)
    return fig


def merge_heatmaps(df: pd.DataFrame) -> plt.Figure:
    table = merge_table(df)
    setups = [s for s in SETUPS if s in set(table["setup"])] or list(SETUPS)
    fig, axes = plt.subplots(1, len(setups), figsize=(3.6 * len(setups), 3), squeeze=False)
    for ax, setup in zip(axes[0], setups, strict=True):
        grid = table[table["setup"] == setup].pivot(index="method", columns="subset", values="target_acc")
        if grid.empty:
            continue
        im = ax.imshow(
            grid.values, cmap="viridis", vmin=table["target_acc"].min(), vmax=table["target_acc"].max()
        )
        ax.set_xticks(range(len(grid.columns)), grid.columns, rotation=60, ha="right", fontsize=7)
        ax.set_yticks(range(len(grid.index)), grid.index)
        ax.grid(False)
        ax.set_title(f"merges, {setup}")
        for (i, j), v in np.ndenumerate(grid.values):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=6, color="white")
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8, label="mean target MultiBLiMP acc")
    return fig


def merged_vs_joint(df: pd.DataFrame) -> plt.Figure:
    table = merge_table(df)
    full = table[table["languages"] == table["languages"].max()]
    joint = metric(
        df[(df["kind"] == "joint") & (df["benchmark"] == "multiblimp") & (df["language"] != "eng")]
    )
    from growup.report.frame import final_rows

    joint = final_rows(joint).groupby("setup")["value"].mean()
    methods = sorted(full["method"].unique())
    fig, ax = plt.subplots(figsize=(7, 3))
    width = 0.8 / (len(methods) + 1)
    for i, setup in enumerate(SETUPS):
        for j, method in enumerate(methods):
            v = full[(full["setup"] == setup) & (full["method"] == method)]["target_acc"]
            ax.bar(
                i + j * width,
                v.iloc[0] if len(v) else np.nan,
                width,
                color=plt.cm.tab10(j),
                label=method if i == 0 else None,
            )
        ax.bar(
            i + len(methods) * width,
            joint.get(setup, np.nan),
            width,
            color="black",
            label="joint multilingual" if i == 0 else None,
        )
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(SETUPS))], SETUPS)
    ax.set_ylabel("mean target MultiBLiMP acc")
    ax.set_title("merge of all languages vs joint training")
    ax.legend(frameon=False, fontsize=7, ncol=3)
    return fig


def render(name: str, df: pd.DataFrame, out_dir: str | os.PathLike[str]) -> list[Path]:
    """Draw figure `name` and write <out_dir>/<name>.pdf and .png (byte-stable metadata)."""
    fig = {
        "data_efficiency": data_efficiency,
        "english_retention": english_retention,
        "merge_heatmaps": merge_heatmaps,
        "merged_vs_joint": merged_vs_joint,
    }[name](df)
    if name != "merge_heatmaps":  # the heatmaps' shared colorbar does its own layout
        fig.tight_layout()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for ext, meta in (("pdf", {"CreationDate": None, "ModDate": None}), ("png", {"Software": None})):
        path = out_dir / f"{name}.{ext}"
        with atomic_file(path) as tmp:
            fig.savefig(tmp, format=ext, metadata=meta)
        paths.append(path)
    plt.close(fig)
    return paths
