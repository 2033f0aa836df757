"""The claims of the paper's abstract, checked on this run's per-pair verdicts with intervals.

Each claim is a set of paired comparisons (the same minimal pairs scored by both sides), each with
its difference, bootstrap interval and p-value (`growup.report.stats`); the claim's verdict is
holds, does not hold or inconclusive by the rule `stats.combine` states (Holm over the claim's
comparisons, then a majority of decided comparisons). The sub-claims, as the paper states them:

1a/1b. Data efficiency: "once exposed to sufficient target-language data, larger upscaled models
   can match or surpass" the 1x model trained on more data: each upscaled run at the last
   checkpoint whose training FLOPs (1a) or tokens (1b) do not exceed the 1x run's final ones,
   against the 1x run's final checkpoint, on the language's MultiBLiMP pairs. A non-inferiority
   test with margin `report.margin`: upscaled − 1x above −δ.
2. Forgetting: the change in English (mean of the English tasks) from each setup's start model
   to the end of adaptation is larger (less negative) for an upscaled setup than for 1x
   (superiority: "reduces").
3a. Merging is worse than joint training: joint multilingual run minus the merge of all languages
   (per setup and method), mean over the languages' MultiBLiMP (superiority of joint training).
3b. Upscaled merges beat 1x merges: per method, mean over every merged subset (superiority).
4. Methods differ a lot: per setup, the spread (max - min) of the methods' mean merge accuracy
   exceeds `report.method_spread` (a threshold).
5. Beyond the paper, from its closing remark ("potential for improvement through merging
   approaches specialized for language-level integration"): each merge method beyond the paper's
   five beats the paper's best method of its setup (superiority).
Beside each comparison: its pairs, discordance, minimum detectable difference and the pairs
needed to decide it (`growup.report.power`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from growup.report import power
from growup.report.frame import metric
from growup.report.power import Design, Test
from growup.report.stats import FAILS, HOLDS, INCONCLUSIVE, Bootstrap, Comparison, Pairs, combine, compare
from growup.study import (
    BASE_SETUP,
    MULTILINGUAL,
    PAPER_METHODS,
    SETUPS,
    UPSCALED,
    merge_name,
    parse_name,
    run_name,
    setup_start,
    subset_languages,
)

Measure = list[tuple[float, tuple[str, str, str, str]]]  # weighted cells (model, step, task, metric)


@dataclass
class Claim:
    title: str
    columns: list[str]
    test: Test = field(default_factory=power.superiority)
    comparisons: list[Comparison] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    verdict: str = ""
    seeds: int = 1  # the most seed replicates of any run the claim reads


def _step_key(step: str) -> int:
    return int(step) if str(step).isdigit() else 1 << 62


def checkpoints(df: pd.DataFrame, model: str, task: str) -> pd.DataFrame:
    """A model's evaluated points on `task`: step, tokens, flops, ordered by step."""
    rows = metric(df[(df["model"] == model) & (df["task"] == task)])
    rows = rows.assign(_o=rows["step"].map(_step_key)).sort_values("_o")
    return rows[["step", "tokens", "flops", "value"]].drop_duplicates("step")


def last_step(df: pd.DataFrame, model: str, task: str) -> str | None:
    points = checkpoints(df, model, task)
    return None if points.empty else str(points["step"].iloc[-1])


def language_task(df: pd.DataFrame, lang: str) -> str | None:
    tasks = sorted(df.loc[(df["benchmark"] == "multiblimp") & (df["language"] == lang), "task"].unique())
    return tasks[0] if tasks else None


class Stats:
    """Point estimates and replicates of weighted sums of cells; a cell of a run with seed
    replicates is the mean over its seeds, resampled over seeds and pairs (`power.SeedBootstrap`)."""

    def __init__(self, boot: Bootstrap, confidence: float) -> None:
        self.boot, self.confidence = power.SeedBootstrap(boot, boot.seed), confidence

    def has(self, measure: Measure) -> bool:
        return all(key in self.boot for _, key in measure)

    def point(self, measure: Measure) -> float:
        return float(sum(w * self.boot.point(k) for w, k in measure))

    def reps(self, measure: Measure) -> np.ndarray:
        return sum(w * self.boot.replicates(k) for w, k in measure)

    def seed_variance(self, measure: Measure) -> float:
        """What the training seeds add to the measure's variance (0 without replicates)."""
        if all(self.boot.seeds(k) == 1 for _, k in measure):
            return 0.0
        pairs_only = sum(w * self.boot.pair_replicates(k) for w, k in measure)
        return max(0.0, float(np.var(self.reps(measure)) - np.var(pairs_only)))

    def contributions(self, measure: Measure) -> list[np.ndarray]:
        """Each task's per-pair contribution to the measure, Σ weight · correct, on the pairs
        every cell of that task has (for a difference of two models: +1, -1 or 0 per pair)."""
        by_task: dict[str, list[tuple[float, tuple[str, str, str, str]]]] = {}
        for w, key in measure:
            by_task.setdefault(key[2], []).append((w, key))
        out = []
        for _task, terms in sorted(by_task.items()):
            cells = [self.boot.cell(k) for _, k in terms]
            ids = cells[0].doc_ids
            for cell in cells[1:]:
                ids = np.intersect1d(ids, cell.doc_ids)
            total = np.zeros(len(ids))
            for (w, _), cell in zip(terms, cells, strict=True):
                total += w * cell.correct[np.searchsorted(cell.doc_ids, ids)]
            out.append(total)
        return out

    def design(self, measure: Measure) -> Design:
        return Design.of(self.contributions(measure), self.seed_variance(measure))

    def compare(self, labels: dict[str, str], measure: Measure, test: Test) -> Comparison:
        c = compare(labels, self.point(measure), self.reps(measure), self.confidence, test.boundary)
        design = self.design(measure)
        if design.discordant == 0:
            # the sides agree on every pair: the pair bootstrap has no variance and its interval
            # is a point, yet the true discordance can be several points (3/n at 95%): undecided
            c.p = 1.0
        return self.powered(c, design)

    def powered(self, c: Comparison, design: Design) -> Comparison:
        """`c` with what its design can decide: pairs, discordance, MDD and pairs needed."""
        c.pairs, c.discordant = design.pairs, design.discordant
        c.mdd = power.mdd(design, c.null, self.confidence)
        c.needed = power.pairs_needed(design, c.estimate, c.null, self.confidence)
        return c


def mean_of(keys: list[tuple[str, str, str, str]], sign: float = 1.0) -> Measure:
    return [(sign / len(keys), k) for k in keys]


def _fmt(v: float) -> str:
    return f"{v:.3f}"


def claim_data_efficiency(df: pd.DataFrame, st: Stats, axis: str, margin: float = 0.0) -> Claim:
    """1a (axis 'flops') / 1b (axis 'tokens'): "match or surpass", a non-inferiority test with
    margin `margin` (a share of accuracy)."""
    what = {"flops": "FLOP-matched", "tokens": "token-matched"}[axis]
    claim = Claim(
        f"Data efficiency, {what}: upscaled models match or beat 1x trained on as much or more data",
        [
            "language",
            "setup",
            "1x final acc",
            f"upscaled checkpoint ({axis} / 1x final {axis})",
            "upscaled acc",
            "upscaled − 1x",
        ],
        power.non_inferiority(margin),
    )
    langs = sorted(df.loc[df["kind"] == "language", "run_language"].dropna().unique())
    for lang in langs:
        task = language_task(df, lang)
        small = run_name(lang, BASE_SETUP)
        step = last_step(df, small, task) if task else None
        if step is None:
            continue
        small_points = checkpoints(df, small, task)
        budget = float(small_points[axis].iloc[-1])
        small_key = (small, step, task, "acc")
        for setup in UPSCALED:
            run = run_name(lang, setup)
            points = checkpoints(df, run, task)
            within = points[points[axis] <= budget * (1 + 1e-9)]
            if not within.empty:
                key, used = (run, str(within["step"].iloc[-1]), task, "acc"), float(within[axis].iloc[-1])
            else:  # no checkpoint of the run fits the budget: its start model (0 adaptation FLOPs)
                start = last_step(df, setup_start(setup), task)
                if start is None or points.empty:
                    continue
                key, used = (setup_start(setup), start, task, "acc"), 0.0
            measure: Measure = [(1.0, key), (-1.0, small_key)]
            if not st.has(measure):
                continue
            share = f"{used / budget:.2f}" if budget else "n/a"
            claim.comparisons.append(
                st.compare(
                    {
                        "language": lang,
                        "setup": setup,
                        "1x final acc": _fmt(st.boot.point(small_key)),
                        claim.columns[3]: f"{key[0]} step {key[1]} ({share})",
                        "upscaled acc": _fmt(st.boot.point(key)),
                    },
                    measure,
                    claim.test,
                )
            )
    claim.notes.append(
        f"The upscaled checkpoint is the last one whose adaptation {axis} do not exceed the 1x run's "
        f"final {axis} (step 0 is the setup's start model)."
    )
    return claim


def english_tasks(df: pd.DataFrame) -> list[str]:
    return sorted(metric(df[df["language"] == "eng"])["task"].unique())


def claim_forgetting(df: pd.DataFrame, st: Stats) -> Claim:
    claim = Claim(
        "English retention: scaling reduces forgetting of English",
        ["language", "setup", "English change, 1x", "English change, upscaled", "upscaled − 1x change"],
    )
    tasks = english_tasks(df)
    langs = sorted(df.loc[df["kind"] == "language", "run_language"].dropna().unique())

    def change(run: str, setup: str) -> Measure | None:
        first = setup_start(setup)
        ends = {m: last_step(df, m, tasks[0]) if tasks else None for m in (run, first)}
        if None in ends.values():
            return None
        after = mean_of([(run, ends[run], t, "acc") for t in tasks])
        before = mean_of([(first, ends[first], t, "acc") for t in tasks], -1.0)
        return after + before

    for lang in langs:
        small = change(run_name(lang, BASE_SETUP), BASE_SETUP)
        for setup in UPSCALED:
            big = change(run_name(lang, setup), setup)
            if small is None or big is None or not st.has(small + big):
                continue
            measure = big + [(-w, k) for w, k in small]
            claim.comparisons.append(
                st.compare(
                    {
                        "language": lang,
                        "setup": setup,
                        "English change, 1x": f"{st.point(small):+.3f}",
                        "English change, upscaled": f"{st.point(big):+.3f}",
                    },
                    measure,
                    claim.test,
                )
            )
    claim.notes.append(
        "English is the mean of " + ", ".join(f"`{t}`" for t in tasks) + "; a change is final "
        "adaptation checkpoint minus the setup's start model, so a positive difference means the "
        "upscaled setup lost less English."
    )
    return claim


def merge_cells(df: pd.DataFrame, model: str) -> list[tuple[str, str, str, str]]:
    """The cells of a merge's target languages (its subset's MultiBLiMP tasks)."""
    tasks = [language_task(df, lang) for lang in subset_languages(parse_name(model).subset)]
    return [(model, "final", t, "acc") for t in tasks if t]


def merges(df: pd.DataFrame) -> pd.DataFrame:
    return df.loc[df["kind"] == "merge", ["model", "setup", "method", "subset"]].drop_duplicates()


def claim_merged_vs_joint(df: pd.DataFrame, st: Stats) -> Claim:
    claim = Claim(
        "Merging is worse than joint multilingual training",
        ["setup", "method", "merge of all languages", "joint multilingual", "joint − merge"],
    )
    table = merges(df)
    for setup in SETUPS:
        rows = table[table["setup"] == setup]
        if rows.empty:
            continue
        widest = max(rows["subset"], key=lambda s: len(subset_languages(s)))
        joint = run_name(MULTILINGUAL, setup)
        for model, method in rows.loc[rows["subset"] == widest, ["model", "method"]].itertuples(index=False):
            cells = merge_cells(df, model)
            step = last_step(df, joint, cells[0][2]) if cells else None
            if step is None:
                continue
            joint_m = mean_of([(joint, step, t, m) for _, _, t, m in cells])
            merge_m = mean_of(cells)
            if not st.has(joint_m + merge_m):
                continue
            claim.comparisons.append(
                st.compare(
                    {
                        "setup": setup,
                        "method": method,
                        "merge of all languages": _fmt(st.point(merge_m)),
                        "joint multilingual": _fmt(st.point(joint_m)),
                    },
                    joint_m + [(-w, k) for w, k in merge_m],
                    claim.test,
                )
            )
    claim.notes.append("Accuracies are means over the merged languages' MultiBLiMP.")
    return claim


def claim_upscaled_merges(df: pd.DataFrame, st: Stats) -> Claim:
    claim = Claim(
        "Upscaled merges beat 1x merges",
        ["setup", "method", "subsets", "1x merges", "upscaled merges", "upscaled − 1x"],
    )
    table = merges(df)
    small = table[table["setup"] == BASE_SETUP]
    for setup in UPSCALED:
        big = table[table["setup"] == setup]
        for method in sorted(set(big["method"]) & set(small["method"])):
            subsets = sorted(
                set(big.loc[big["method"] == method, "subset"])
                & set(small.loc[small["method"] == method, "subset"])
            )
            up: Measure = []
            base: Measure = []
            for subset in subsets:
                up += mean_of(merge_cells(df, merge_name(setup, method, subset)), 1 / len(subsets))
                base += mean_of(merge_cells(df, merge_name(BASE_SETUP, method, subset)), 1 / len(subsets))
            if not subsets or not st.has(up + base):
                continue
            claim.comparisons.append(
                st.compare(
                    {
                        "setup": setup,
                        "method": method,
                        "subsets": str(len(subsets)),
                        "1x merges": _fmt(st.point(base)),
                        "upscaled merges": _fmt(st.point(up)),
                    },
                    up + [(-w, k) for w, k in base],
                    claim.test,
                )
            )
    claim.notes.append("Each side is the mean over every merged subset of the mean over its languages.")
    return claim


def claim_methods(df: pd.DataFrame, st: Stats, spread: float) -> Claim:
    claim = Claim(
        "Merge methods differ a lot from one another",
        ["setup", "method means", "spread (max − min)"],
        power.threshold(spread),
    )
    table = merges(df)
    for setup in SETUPS:
        rows = table[table["setup"] == setup]
        methods = sorted(rows["method"].unique())
        subsets = (
            sorted(set.intersection(*(set(rows.loc[rows["method"] == m, "subset"]) for m in methods)))
            if methods
            else []
        )
        if len(methods) < 2 or not subsets:
            continue
        means: dict[str, Measure] = {}
        for method in methods:
            means[method] = []
            for subset in subsets:
                means[method] += mean_of(merge_cells(df, merge_name(setup, method, subset)), 1 / len(subsets))
        if not all(st.has(m) for m in means.values()):
            continue
        points = np.array([st.point(m) for m in means.values()])
        reps = np.stack([st.reps(m) for m in means.values()])
        comparison = compare(
            {
                "setup": setup,
                "method means": ", ".join(f"{m} {p:.3f}" for m, p in zip(methods, points, strict=True)),
            },
            float(points.max() - points.min()),
            reps.max(axis=0) - reps.min(axis=0),
            st.confidence,
            null=claim.test.boundary,
        )
        # the design of the two methods that set the spread
        top, bottom = (list(means.values())[i] for i in (int(points.argmax()), int(points.argmin())))
        claim.comparisons.append(st.powered(comparison, st.design(top + [(-w, k) for w, k in bottom])))
    claim.notes.append(
        "A method's mean is over the subsets merged by every method of the setup; "
        f"the spread is recomputed in every resample, and its null value is the threshold "
        f"`report.method_spread` = {spread:.3f} (the claim: spread above it)."
    )
    return claim


def method_means(df: pd.DataFrame, setup: str, subsets: list[str] | None = None) -> dict[str, Measure]:
    """Each merge method's mean target accuracy in `setup`: over `subsets` (default: those that
    every method of the setup merged), of the mean over each subset's languages."""
    rows = merges(df)
    rows = rows[rows["setup"] == setup]
    methods = sorted(rows["method"].unique())
    if subsets is None:
        sets = [set(rows.loc[rows["method"] == m, "subset"]) for m in methods]
        subsets = sorted(set.intersection(*sets)) if sets else []
    means: dict[str, Measure] = {}
    for method in methods:
        if subsets and set(subsets) <= set(rows.loc[rows["method"] == method, "subset"]):
            means[method] = [
                (w / len(subsets), key)
                for subset in subsets
                for w, key in mean_of(merge_cells(df, merge_name(setup, method, subset)))
            ]
    return means


def best_paper_method(st: Stats, means: dict[str, Measure]) -> str | None:
    """The paper's method (`growup.study.PAPER_METHODS`) with the highest point estimate."""
    paper = [m for m in sorted(means) if m in PAPER_METHODS and st.has(means[m])]
    return max(paper, key=lambda m: st.point(means[m])) if paper else None


def claim_language_merging(df: pd.DataFrame, st: Stats) -> Claim:
    """5 (beyond the paper): merging made for many specialists (every method not among the
    paper's five: growup's TSV-M, Iso-C and Iso-CTS in the shipped configs) beats the paper's
    best method of the setup, on the subsets that every method merged."""
    claim = Claim(
        "Language-specialised merging beats the paper's best method",
        ["setup", "method", "paper's best method", "its acc", "method acc", "method − paper's best"],
    )
    for setup in SETUPS:
        means = method_means(df, setup)
        best = best_paper_method(st, means)
        for method in sorted(m for m in means if m not in PAPER_METHODS):
            if best is None or not st.has(means[method]):
                continue
            labels = {
                "setup": setup,
                "method": method,
                "paper's best method": best,
                "its acc": _fmt(st.point(means[best])),
                "method acc": _fmt(st.point(means[method])),
            }
            claim.comparisons.append(
                st.compare(labels, means[method] + [(-w, k) for w, k in means[best]], claim.test)
            )
    claim.notes.append(
        "Accuracy is the mean over every subset merged by all methods of the setup of the mean over its "
        "languages' MultiBLiMP; the paper's best method is the one of its five with the highest mean on "
        "this run (chosen on the same pairs, which favours it)."
    )
    return claim


VERDICT_TEXT = {HOLDS: "**holds**", FAILS: "**does not hold**", INCONCLUSIVE: "**inconclusive**"}


def _p(p: float) -> str:
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _pairs(c: Comparison) -> str:
    """Pairs per task: `50`, or `5×50` for five tasks of 50 pairs."""
    if not c.pairs:
        return ""
    if len(set(c.pairs)) == 1:
        return f"{len(c.pairs)}×{c.pairs[0]}" if len(c.pairs) > 1 else str(c.pairs[0])
    return "/".join(map(str, c.pairs))


def _needed(c: Comparison) -> str:
    """Pairs per task that would decide an undecided comparison's observed difference."""
    if c.decision != INCONCLUSIVE:
        return "decided"
    if c.discordant == 0:
        return "n/a (no discordant pairs)"
    if math.isinf(c.needed):
        return "never (estimate on the boundary)" if c.estimate == c.null else "more seeds"
    return f"{math.ceil(c.needed):,}"


def _mdd(c: Comparison) -> str:
    return "n/a (no discordant pairs)" if c.discordant == 0 else f"{c.mdd:.3f}"


def claim_lines(claim: Claim, confidence: float) -> list[str]:
    if not claim.comparisons:
        return ["No results to compare.", *claim.notes]
    diff = claim.columns[-1]
    head = [*claim.columns[:-1], diff, f"{confidence:.0%} interval", "p", "p (Holm)", "decided"]
    head += ["pairs", "discordant", "MDD (80%)", "pairs needed"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in claim.comparisons:
        cells = [c.labels.get(col, "") for col in claim.columns[:-1]]
        cells += [f"{c.estimate:+.3f}", f"[{c.low:+.3f}, {c.high:+.3f}]", _p(c.p), _p(c.p_holm)]
        cells.append({HOLDS: "for", FAILS: "against", INCONCLUSIVE: "undecided"}[c.decision])
        cells += [_pairs(c), f"{c.discordant:.3f}", _mdd(c), _needed(c)]
        lines.append("| " + " | ".join(cells) + " |")
    k = len(claim.comparisons)
    count = {d: sum(c.decision == d for c in claim.comparisons) for d in (HOLDS, FAILS, INCONCLUSIVE)}
    return [
        *lines,
        "",
        f"Decided for the claim: {count[HOLDS]} of {k}; against: {count[FAILS]} of {k}; "
        f"undecided: {count[INCONCLUSIVE]} of {k}.",
        "",
        *claim.notes,
    ]


def claims_markdown(
    df: pd.DataFrame,
    pairs: Pairs,
    *,
    confidence: float,
    resamples: int,
    seed: int,
    spread: float,
    study: str,
    margin: float = 0.0,
) -> str:
    """claims.md: the rule, then per sub-claim its test, verdict and every comparison with its
    interval and power. `margin`: the non-inferiority margin δ of "match or surpass", in accuracy
    points (config key `report.margin`)."""
    boot = {"confidence": confidence, "resamples": resamples, "seed": seed}
    checked = check_claims(df, pairs, spread=spread, margin=margin, **boot)
    return render_markdown(checked, study=study, margin=margin, **boot)


def check_claims(
    df: pd.DataFrame,
    pairs: Pairs,
    *,
    confidence: float,
    resamples: int,
    seed: int,
    spread: float,
    margin: float = 0.0,
) -> list[tuple[str, Claim]]:
    """Every sub-claim by its number, its comparisons decided and its verdict set."""
    st = Stats(Bootstrap(pairs, resamples, seed), confidence)
    delta = margin / 100  # accuracy points as a share of accuracy
    builders: list[tuple[str, Callable[[], Claim]]] = [
        ("1a", lambda: claim_data_efficiency(df, st, "flops", delta)),
        ("1b", lambda: claim_data_efficiency(df, st, "tokens", delta)),
        ("2", lambda: claim_forgetting(df, st)),
        ("3a", lambda: claim_merged_vs_joint(df, st)),
        ("3b", lambda: claim_upscaled_merges(df, st)),
        ("4", lambda: claim_methods(df, st, spread)),
        ("5", lambda: claim_language_merging(df, st)),
    ]
    checked = []
    for number, build in builders:
        claim = build()
        claim.verdict = combine(claim.comparisons, confidence) if claim.comparisons else ""
        claim.seeds = max((len(m) for m in st.boot.groups.values()), default=1)
        checked.append((number, claim))
    return checked


def _seed_rule(seeds: int, resamples: int) -> list[str]:
    """The verdict rule's paragraph on seed replicates (none for a study of one seed)."""
    if seeds < 2:
        return []
    return [
        f"Runs trained with {seeds} seeds (`training.replicates`) enter every comparison as their mean "
        f"over seeds, and the bootstrap is two-level: each of the {resamples} resamples draws the "
        f"seeds with replacement (seed i of every run together) and, within them, the pairs, so "
        f"each interval holds the training seeds' variance as well as the items'; a run of one seed "
        f"(the English start models) enters as itself.",
        "",
    ]


def render_markdown(
    claims: list[tuple[str, Claim]],
    *,
    confidence: float,
    resamples: int,
    seed: int,
    study: str,
    margin: float,
) -> str:
    """claims.md of checked claims (`check_claims`)."""
    delta = margin / 100
    alpha = 1 - confidence
    out = [
        "# Claims of the paper, checked on this run",
        "",
        f"Generated by `growup report claims` from `results/tables/evals.csv` and the per-pair verdicts "
        f"in `results/tables/pairs.jsonl` (study: {study}). Accuracy is MultiBLiMP `acc` for target "
        "languages; English is the mean of the English tasks. Numbers from the mini study or the "
        "offline mirror are not comparable with the paper.",
        "",
        "## Verdict rule",
        "",
        f"Every comparison is paired: both sides are scored on the same minimal pairs, and a "
        f"bootstrap over pairs ({resamples} resamples, seed {seed}, one draw per task shared by every "
        f"model) gives the difference's {confidence:.0%} percentile interval and a two-sided p-value. "
        f"The difference is oriented so that the claim says it is above its claim's boundary, and "
        f'each claim states its test: *superiority* (boundary 0) for "beats", "reduces" and '
        f'"is worse than"; *non-inferiority* for "match or surpass" (claims 1a, 1b), whose boundary '
        f"is −δ with the margin δ = {margin:g} accuracy {'point' if margin == 1 else 'points'} "
        f"({delta:.3f}, `report.margin`): the "
        f"upscaled model matches when it is at most δ worse; *threshold* for claim 4. Within a "
        f"claim, p-values (against the boundary) are Holm-adjusted over its comparisons; a "
        f"comparison is *decided* when its adjusted p is below {alpha:.2f}, *for* the claim when the "
        f"difference is above the boundary and *against* it when below. A claim **holds** when more "
        f"than half of its comparisons are decided for it, **does not hold** when more than half are "
        f"decided against it, and is **inconclusive** otherwise: the data cannot decide. A claim of "
        f"one comparison holds exactly when its interval lies above the boundary. A comparison whose "
        f"two sides agree on every pair has a bootstrap interval of one point and is never decided "
        f"(its p is set to 1). With δ = 0, "
        f'"match" is not told apart from "cannot tell": a tie is inconclusive.',
        "",
        *(_seed_rule(max(c.seeds for _, c in claims), resamples) if claims else []),
        f"What each comparison could decide (the paired design, McNemar-style; "
        f"`growup.report.power`): *pairs* per task, the *discordant* share (pairs on which the two "
        f"sides differ), the *MDD*, the smallest true distance from the boundary that this design "
        f"decides with 80% power at {confidence:.0%} confidence (before Holm), and, for an "
        f"undecided comparison, the *pairs needed* per task for its observed difference to be "
        f'decided with 80% power ("more seeds" when the training seeds\' variance alone is too '
        f"large).",
    ]
    for number, claim in claims:
        text = VERDICT_TEXT[claim.verdict] if claim.verdict else "**not checked** (missing results)"
        head = f"## {number}. {claim.title}: {text}"
        test = f"Test: {claim.test.describe(margin if claim.test.kind == power.NON_INFERIORITY else None)}."
        out += ["", head, "", test, "", *claim_lines(claim, confidence)]
    return "\n".join(out) + "\n"
