"""The four claims of the paper's abstract, checked on the numbers of this run (evals.csv only).

1. Data efficiency: an upscaled model (1x-cloned, 2x) reaches the 1x model's final target
   accuracy with fewer adaptation tokens than the 1x model used, in most languages.
2. Forgetting: the English score (mean of BLiMP and MultiBLiMP-eng) drops less from each setup's
   start for the upscaled setups than for 1x (mean over languages).
3. Merging: the merge of all languages scores below joint multilingual training (each setup, mean
   over methods), and upscaled merges score above 1x merges.
4. Methods differ: the spread (max − min over methods) of mean merge accuracy is at least
   `report.method_spread` in every setup.
"""

from __future__ import annotations

import pandas as pd

from growup.report.figures import curve
from growup.report.frame import SETUPS, START, final_rows, metric
from growup.report.tables import merge_table

UPSCALED = ("1x-cloned", "2x")


def _verdict(ok: bool | None) -> str:
    return (
        "**holds**"
        if ok
        else ("**does not hold**" if ok is not None else "**not checked** (missing results)")
    )


def tokens_to_reach(c: pd.DataFrame, target: float) -> float | None:
    hit = c[c["value"] >= target]
    return float(hit["tokens"].min()) if not hit.empty else None


def claim_data_efficiency(df: pd.DataFrame) -> tuple[bool | None, list[str]]:
    langs = sorted(df.loc[df["kind"] == "language", "run_language"].dropna().unique())
    lines, wins, total = [], 0, 0
    for lang in langs:
        target = lambda r, lang=lang: (r["benchmark"] == "multiblimp") & (r["language"] == lang)  # noqa: E731
        small = curve(df, f"{lang}-1x", "1x", target)
        if small.empty:
            continue
        goal, small_tokens = small["value"].iloc[-1], small["tokens"].iloc[-1]
        for setup in UPSCALED:
            big = curve(df, f"{lang}-{setup}", setup, target)
            if big.empty:
                continue
            reach = tokens_to_reach(big, goal)
            total += 1
            win = reach is not None and reach < small_tokens
            wins += win
            when = f"after {reach:,.0f} tokens" if reach is not None else "never"
            lines.append(
                f"| {lang} | {setup} | {goal:.3f} at {small_tokens:,.0f} | "
                f"{big['value'].iloc[-1]:.3f} | {when} |"
            )
    header = [
        "| language | upscaled setup | 1x final acc at tokens | upscaled final acc | reaches 1x final |",
        "|---|---|---|---|---|",
    ]
    ok = None if total == 0 else wins > total / 2
    return ok, [
        *header,
        *lines,
        "",
        f"Upscaled runs reaching the 1x final accuracy with fewer tokens: {wins} of {total}.",
    ]


def english_score(df: pd.DataFrame, model: str) -> float | None:
    rows = metric(final_rows(df[df["model"] == model]))
    rows = rows[rows["language"] == "eng"]
    return float(rows["value"].mean()) if not rows.empty else None


def claim_forgetting(df: pd.DataFrame) -> tuple[bool | None, list[str]]:
    drops = {}
    lines = ["| setup | English at start | English after adaptation (mean) | drop |", "|---|---|---|---|"]
    for setup in SETUPS:
        start = english_score(df, START[setup])
        runs = sorted(df.loc[(df["kind"] == "language") & (df["setup"] == setup), "model"].unique())
        after = [s for s in (english_score(df, r) for r in runs) if s is not None]
        if start is None or not after:
            continue
        drops[setup] = start - sum(after) / len(after)
        lines.append(f"| {setup} | {start:.3f} | {sum(after) / len(after):.3f} | {drops[setup]:+.3f} |")
    if "1x" not in drops or not any(s in drops for s in UPSCALED):
        return None, lines
    ok = all(drops[s] < drops["1x"] for s in UPSCALED if s in drops)
    return ok, lines


def claim_merging(df: pd.DataFrame) -> tuple[bool | None, list[str]]:
    table = merge_table(df)
    if table.empty:
        return None, ["No merge results."]
    full = table[table["languages"] == table["languages"].max()]
    joint = metric(
        df[(df["kind"] == "joint") & (df["benchmark"] == "multiblimp") & (df["language"] != "eng")]
    )
    joint = final_rows(joint).groupby("setup")["value"].mean()
    merged = full.groupby("setup")["target_acc"].mean()
    lines = ["| setup | merge of all languages (mean over methods) | joint multilingual |", "|---|---|---|"]
    below = []
    for setup in SETUPS:
        if setup in merged and setup in joint:
            lines.append(f"| {setup} | {merged[setup]:.3f} | {joint[setup]:.3f} |")
            below.append(merged[setup] < joint[setup])
    all_merges = table.groupby("setup")["target_acc"].mean()
    lines += [
        "",
        "Mean over every merge: " + ", ".join(f"{s} {all_merges[s]:.3f}" for s in SETUPS if s in all_merges),
    ]
    if not below or "1x" not in all_merges:
        return None, lines
    upscaled_better = all(all_merges[s] > all_merges["1x"] for s in UPSCALED if s in all_merges)
    return all(below) and upscaled_better, lines


def claim_methods(df: pd.DataFrame, spread: float) -> tuple[bool | None, list[str]]:
    table = merge_table(df)
    if table.empty:
        return None, ["No merge results."]
    by = table.groupby(["setup", "method"])["target_acc"].mean().unstack("method")
    lines = ["| setup | " + " | ".join(by.columns) + " | spread |", "|---" * (len(by.columns) + 2) + "|"]
    spreads = []
    for setup, row in by.iterrows():
        spreads.append(row.max() - row.min())
        lines.append(f"| {setup} | " + " | ".join(f"{v:.3f}" for v in row) + f" | {spreads[-1]:.3f} |")
    lines.append("")
    lines.append(f"Threshold (config `report.method_spread`): {spread:.3f}.")
    return all(s >= spread for s in spreads), lines


def claims_markdown(df: pd.DataFrame, spread: float, study: str) -> str:
    checks = [
        ("1. Upscaled models are more data-efficient", claim_data_efficiency(df)),
        ("2. Scaling reduces forgetting of English", claim_forgetting(df)),
        (
            "3. Merging is worse than joint training, but upscaled merges beat smaller merges",
            claim_merging(df),
        ),
        ("4. Merge methods differ a lot from one another", claim_methods(df, spread)),
    ]
    out = [
        "# Claims of the paper, checked on this run",
        "",
        f"Generated by `growup report claims` from `results/tables/evals.csv` (study: {study}). "
        "Accuracy is MultiBLiMP `acc` for target languages; English is the mean of BLiMP single-error "
        "and MultiBLiMP-eng. Numbers from the mini study or the offline mirror are not comparable with "
        "the paper.",
    ]
    for title, (ok, lines) in checks:
        out += ["", f"## {title}: {_verdict(ok)}", "", *lines]
    return "\n".join(out) + "\n"
