"""The claims as a figure, and the `growup report claims` verb that writes it with claims.md.

One panel per sub-claim: every comparison's difference with its interval, coloured by its decision
(for, against, undecided), against the claim's boundary (a dashed line: 0, −δ or the threshold);
a non-inferiority claim shades its margin, the band from −δ to 0 where "matches" lies. The
figure is drawn from the checked claims (`claims.check_claims`), so it says what claims.md says.
"""

from __future__ import annotations

import argparse
import logging
import textwrap

import matplotlib
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from growup.io import atomic_write_text
from growup.report import power
from growup.report.claims import Claim, check_claims, render_markdown
from growup.report.figures import STYLE, save, subplots
from growup.report.frame import load
from growup.report.stats import FAILS, HOLDS, Pairs
from growup.study import load_job

log = logging.getLogger("growup")
DECISION_COLORS = {HOLDS: "#2a9d5c", FAILS: "#c0392b"}  # undecided: grey
UNDECIDED = "0.55"
MARGIN_COLOR = "#f2c14e"


LABELS = ("language", "setup", "method")  # the columns that name a comparison


def _label(claim: Claim, labels: dict[str, str]) -> str:
    """A comparison's row label: the columns that name it (language and setup, setup and method)."""
    return " · ".join(labels[col] for col in claim.columns if col in LABELS and labels.get(col))


def claims_figure(claims: list[tuple[str, Claim]], margin: float) -> Figure:
    """Every checked claim with comparisons, one panel each (`margin`: δ in accuracy points)."""
    shown = [(n, c) for n, c in claims if c.comparisons]
    rows = [len(c.comparisons) for _, c in shown] or [1]
    with matplotlib.rc_context(STYLE):
        fig, axes = subplots(
            len(rows),
            1,
            figsize=(7.2, 0.9 + sum(0.19 * r + 0.95 for r in rows)),
            squeeze=False,
            gridspec_kw={"height_ratios": [r + 3.0 for r in rows]},
        )
        for ax, (number, claim) in zip(axes[:, 0], shown, strict=True):
            _panel(ax, number, claim)
        if not shown:
            axes[0, 0].set_axis_off()
            axes[0, 0].text(0.5, 0.5, "no claim could be checked (missing results)", ha="center")
        _legend(fig, margin, any(c.test.kind == power.NON_INFERIORITY for _, c in shown))
    return fig


def _legend(fig: Figure, margin: float, with_margin: bool) -> None:
    handles = [
        Line2D([], [], color=DECISION_COLORS[HOLDS], lw=2.2, marker="o", ms=4, label="decided for"),
        Line2D([], [], color=DECISION_COLORS[FAILS], lw=2.2, marker="o", ms=4, label="decided against"),
        Line2D([], [], color=UNDECIDED, lw=2.2, marker="o", ms=4, label="undecided"),
        Line2D([], [], color="black", lw=1.0, ls="--", label="boundary (0, −δ or threshold)"),
    ]
    if with_margin:
        handles.append(
            Patch(color=MARGIN_COLOR, alpha=0.35, lw=0, label=f"margin δ = {margin:g} accuracy points")
        )
    fig.legend(handles=handles, loc="outside upper center", ncol=3, frameon=False, fontsize=7)


def _panel(ax: Axes, number: str, claim: Claim) -> None:
    """One claim: each comparison's estimate and interval, against the boundary (and margin)."""
    test, comps = claim.test, claim.comparisons
    ys = list(range(len(comps)))[::-1]
    if test.kind == power.NON_INFERIORITY and test.boundary < 0:
        ax.axvspan(test.boundary, 0, color=MARGIN_COLOR, alpha=0.35, lw=0)
    ax.axvline(0, color="0.6", lw=0.8)
    ax.axvline(test.boundary, color="black", lw=1.0, ls="--")
    for y, c in zip(ys, comps, strict=True):
        color = DECISION_COLORS.get(c.decision, UNDECIDED)
        ax.plot([c.low, c.high], [y, y], color=color, lw=2.2, solid_capstyle="butt")
        ax.plot([c.estimate], [y], "o", ms=4, color=color)
    ax.set_yticks(ys, [_label(claim, c.labels) for c in comps], fontsize=7)
    ax.set_ylim(-0.7, len(comps) - 0.3)
    ax.grid(axis="y", visible=False)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=4, steps=[1, 2, 5, 10]))
    title = textwrap.fill(f"{number}. {claim.title}", 70)
    ax.set_title(f"{title}: {claim.verdict or 'not checked'}", fontsize=7.5, loc="left")
    ax.set_xlabel(f"{claim.columns[-1]} ({test.kind}, {len(comps)} comparisons)", fontsize=7)
    ax.tick_params(axis="x", labelsize=7)


def command(args: argparse.Namespace) -> None:
    """`growup report claims`: results/claims.md from the tidy table and the per-pair verdicts,
    and results/figures/claims.pdf|png."""
    study = load_job(args.spec, args.configfile, "report claims")
    rep = study.report
    boot = {"confidence": rep.confidence, "resamples": rep.bootstrap_resamples, "seed": rep.bootstrap_seed}
    checked = check_claims(
        load(args.evals_csv), Pairs.load(args.pairs), spread=rep.method_spread, margin=rep.margin, **boot
    )
    atomic_write_text(args.out, render_markdown(checked, study=study.name, margin=rep.margin, **boot))
    for path in save(claims_figure(checked, rep.margin), "claims", args.figure_dir):
        log.info("wrote %s", path)
