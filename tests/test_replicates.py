"""Seed replicates (`training.replicates`): names that parse back, the grid they add (every
language and multilingual run once per seed; base runs once), job specs that leave today's jobs
alone, the budget, the data order of a replicate, and the two-level bootstrap: an interval that
widens when seeds disagree."""

from __future__ import annotations

import copy
import json
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml
from synthetic_evals import study as synthetic_study

from growup.config import resolve_config
from growup.models.checkpoint import read_card
from growup.report import claims, power
from growup.report.stats import Bootstrap, Pairs, interval
from growup.study import (
    MULTILINGUAL,
    SETUPS,
    check_study,
    job_spec,
    load_config,
    merge_grid,
    parse_name,
    parse_run,
    replicate_name,
    run_seed,
    trained_runs,
)
from growup.train.budget import study_budget
from helpers import REPO, copy_repo, planned, run_tool


def mini(replicates=None, merges: str | None = None, config: str = "config.yaml"):
    raw = copy.deepcopy(resolve_config(REPO / "config" / config))
    if replicates is not None:
        raw["training"]["replicates"] = replicates
    if merges is not None:
        raw["merging"]["replicates"] = merges
    return check_study(raw, config)


def test_one_seed_is_todays_grid_and_every_spec_is_unchanged():
    plain, same = mini(), mini(replicates=[0])
    assert trained_runs(plain) == trained_runs(same) and len(trained_runs(plain)) == 21
    assert not any(parse_name(r).replicate for r in trained_runs(plain))
    for run in trained_runs(plain):
        assert job_spec(plain, "train", run=run) == job_spec(same, "train", run=run)


def test_more_seeds_train_every_adaptation_run_once_per_seed_and_leave_the_rest_alone():
    plain, three = mini(), mini(replicates=[0, 5, 17])
    runs = trained_runs(three)
    extra = [r for r in runs if r not in trained_runs(plain)]
    adaptation = [f"{p}-{s}" for p in (*plain.data.language_codes, MULTILINGUAL) for s in SETUPS]
    assert sorted(extra) == sorted(replicate_name(r, s) for r in adaptation for s in (5, 17))
    for run in trained_runs(plain):  # adding seeds retrains nothing that exists
        assert job_spec(plain, "train", run=run) == job_spec(three, "train", run=run), run
    spec = job_spec(three, "train", run="isl-2x-s5")
    assert spec["values"] == job_spec(three, "train", run="isl-2x")["values"]  # the seed is in the name
    assert run_seed(three, "isl-2x-s5") == 5 and run_seed(three, "isl-2x") == 0


def test_replicate_names_parse_back_and_collide_with_no_token():
    three = mini(replicates=[0, 5, 17], merges="all")
    for run in trained_runs(three):
        name = parse_name(run)
        plain = parse_name(run.removesuffix(f"-s{name.replicate}") if name.replicate else run)
        assert (name.kind, name.prefix, name.setup) == (plain.kind, plain.prefix, plain.setup), run
        assert parse_run(three, run)[2] == name.setup
    for merge in merge_grid(three):
        name = parse_name(merge.name)
        assert (name.setup, name.method, name.subset, name.replicate) == (
            merge.setup,
            merge.method,
            merge.subset_name,
            merge.replicate,
        )
    assert parse_name("english-1x-cloned").replicate is None and parse_name("seed").kind == "seed"
    assert parse_name("multilingual-1x-s1") == parse_name("multilingual-1x").__class__(
        "multilingual", "multilingual", "1x", replicate=1
    )
    with pytest.raises(Exception, match="unknown run 'english-1x-s5'"):
        parse_run(three, "english-1x-s5")  # base runs are shared starting points, never replicated


def test_merges_use_one_replicate_unless_asked_for_all():
    one, every = mini(replicates=[0, 5]), mini(replicates=[0, 5], merges="all")
    assert merge_grid(one) == merge_grid(mini())
    assert len(merge_grid(every)) == 2 * len(merge_grid(one))
    merge = next(m for m in merge_grid(every) if m.replicate == 5)
    assert merge.model_path("merges").name == f"{merge.subset_name}-s5"
    assert {merge.run(lang) for lang in merge.subset} == {f"{lang}-{merge.setup}-s5" for lang in merge.subset}


def test_the_budget_multiplies_adaptation_runs_by_the_seeds():
    one, three = mini(config="paper.yaml"), mini([42, 1, 2], config="paper.yaml")
    rows = {r.run: r.flops for r in study_budget(one)}
    more = {r.run: r.flops for r in study_budget(three)}
    base = sum(f for run, f in rows.items() if parse_name(run).kind in ("seed", "english"))
    adaptation = sum(rows.values()) - base
    assert sum(more.values()) == pytest.approx(base + 3 * adaptation)
    assert more["isl-2x-s2"] == rows["isl-2x"]


def test_a_replicate_reads_the_same_data_in_another_order(tmp_path):
    from growup.train.runs import run_spec

    two = mini(replicates=[0, 3])
    stages = [{"fraction": 1.0, "seed": 42}, {"fraction": 0.5, "seed": 137}]
    (tmp_path / "unimax.json").write_text(json.dumps({"languages": {"isl": {"stages": stages}}}))
    plain, other = run_spec(two, "isl-1x", tmp_path), run_spec(two, "isl-1x-s3", tmp_path)
    assert plain.schedule == other.schedule and plain.datasets == other.datasets
    assert [p.seed for p in plain.phases] == [42, 137]
    assert [p.seed for p in other.phases] != [42, 137] and other == run_spec(two, "isl-1x-s3", tmp_path)
    assert [[q.fraction for q in p.portions] for p in other.phases] == [[1.0, 1.0], [0.5, 0.5]]


def replicated_pairs(n: int, shift: float) -> Pairs:
    """isl-1x and isl-2x on n pairs, each with a seed-1 replicate; isl-2x's replicate differs from
    its first seed by `shift` of accuracy (0: the seeds agree pair for pair)."""
    rng = np.random.default_rng(4)
    pairs = Pairs()
    for model, p in (("isl-1x", 0.6), ("isl-2x", 0.65)):
        correct = (rng.random(n) < p).astype(float)
        pairs.add((model, "20", "multiblimp_isl", "acc"), range(n), correct)
        other = correct.copy()
        if model == "isl-2x" and shift:
            other[rng.permutation(np.flatnonzero(other == 0))[: round(shift * n)]] = 1
        pairs.add((f"{model}-s1", "20", "multiblimp_isl", "acc"), range(n), other)
    return pairs


def test_the_interval_widens_when_seeds_disagree():
    measure = [
        (1.0, ("isl-2x", "20", "multiblimp_isl", "acc")),
        (-1.0, ("isl-1x", "20", "multiblimp_isl", "acc")),
    ]
    widths = {}
    for shift in (0.0, 0.15):
        st = claims.Stats(Bootstrap(replicated_pairs(400, shift), 2000, 0), 0.95)
        c = st.compare({}, measure, power.superiority())
        widths[shift] = c.high - c.low
        assert st.boot.seeds(measure[0][1]) == 2
    single = Pairs({k: v for k, v in replicated_pairs(400, 0.0).cells.items() if not k[0].endswith("-s1")})
    alone = claims.Stats(Bootstrap(single, 2000, 0), 0.95)
    low, high = interval(alone.reps(measure), 0.95)
    assert widths[0.0] == pytest.approx(high - low)  # agreeing seeds: the pair interval itself
    assert widths[0.15] > 1.5 * widths[0.0]  # disagreeing seeds: training variance in the interval
    assert alone.seed_variance(measure) == 0.0


def test_tables_and_claims_read_the_mean_over_seeds():
    df, pairs = synthetic_study("better", n=200, seeds={1: 0.1})
    assert not df["model"].str.contains("-s1").any()  # one row per recipe
    row = df[(df["model"] == "ekk-2x") & (df["step"] == "20") & (df["task"] == "multiblimp_ekk")].iloc[0]
    assert row["value"] == pytest.approx(0.85) and row["seeds"] == 2  # (0.8 + 0.9) / 2
    assert (row["seed_min"], row["seed_max"]) == pytest.approx((0.8, 0.9))
    assert row["ci_low"] < 0.8 and row["ci_high"] > 0.9  # the two-level interval spans both seeds
    text = claims.claims_markdown(df, pairs, confidence=0.95, resamples=500, seed=0, spread=0.05, study="t")
    assert "two-level" in text and "| ekk | 2x | 0.600 | ekk-2x step 20 (1.00) | 0.850 |" in text


def test_a_seed_effect_both_sides_share_cancels_in_their_difference():
    """Replicate i of every run is drawn together (seed_draws is one draw per seed count), so a
    comparison stays paired by seed: when seed 1 moves both sides by the same pairs, their
    difference is the same in every seed and its interval is the pair interval itself; drawn
    apart, the seeds would widen it."""
    rng = np.random.default_rng(7)
    base = {model: (rng.random(300) < p).astype(float) for model, p in (("isl-1x", 0.55), ("isl-2x", 0.6))}
    lifted = np.flatnonzero((base["isl-1x"] == 0) & (base["isl-2x"] == 0))[:40]  # both wrong: both right
    pairs = Pairs()
    for model, correct in base.items():
        other = correct.copy()
        other[lifted] = 1
        pairs.add((model, "20", "multiblimp_isl", "acc"), range(300), correct)
        pairs.add((f"{model}-s1", "20", "multiblimp_isl", "acc"), range(300), other)
    measure = [
        (1.0, ("isl-2x", "20", "multiblimp_isl", "acc")),
        (-1.0, ("isl-1x", "20", "multiblimp_isl", "acc")),
    ]
    st = claims.Stats(Bootstrap(pairs, 1000, 0), 0.95)
    for _, key in measure:  # the seeds disagree on each side: seed 1 is 0.13 higher
        low, high = (st.boot.boot.point(k) for k in st.boot.members(key))
        assert high - low == pytest.approx(40 / 300)
    pair_level = sum(w * st.boot.pair_replicates(k) for w, k in measure)
    np.testing.assert_allclose(st.reps(measure), pair_level, atol=1e-12)
    assert st.seed_variance(measure) == 0.0
    apart = st.boot.replicates(measure[0][1]) - power.two_level(
        np.stack([st.boot.boot.replicates(k) for k in st.boot.members(measure[1][1])]),
        power.seed_draws(2, 1000, 99),  # the other side's seeds drawn on their own
    )
    assert np.var(apart) > 1.5 * np.var(pair_level)


def test_a_run_of_one_seed_reads_as_the_pair_bootstrap():
    pairs = replicated_pairs(100, 0.1)
    lone = ("english-1x", "final", "multiblimp_isl", "acc")
    pairs.add(lone, range(100), np.arange(100) % 2)
    seeds = power.SeedBootstrap(Bootstrap(pairs, 500, 0), 0)
    assert seeds.members(lone) == [lone] and seeds.seeds(lone) == 1
    np.testing.assert_array_equal(seeds.replicates(lone), seeds.boot.replicates(lone))
    recipe = ("isl-2x", "20", "multiblimp_isl", "acc")
    assert seeds.members(recipe) == [recipe, ("isl-2x-s1", *recipe[1:])]
    assert ("isl-2x-s1", *recipe[1:]) not in seeds  # a replicate is read through its recipe
    assert seeds.point(recipe) == pytest.approx(np.mean([seeds.boot.point(k) for k in seeds.members(recipe)]))


# --- end to end: a second seed of Icelandic's 1x and 2x runs on the built mini study -------------
SLICE = ("isl-1x-s1", "isl-2x-s1")
STARTS = ("english-1x", "english-2x")  # the slice's start models, shared by both seeds
TWO_SEEDS = {"extends": "config.yaml", "training": {"replicates": [0, 1]}}


@pytest.fixture(scope="module")
def two_seed_slice(study_repo, tmp_path_factory):
    """A checkout holding the built study's data, the slice's start models and every evaluation
    (no Snakemake records: present outputs are up to date), where Icelandic's 1x and 2x runs train
    a second seed; then the tidy table and the claims of what is there."""
    repo = copy_repo(tmp_path_factory.mktemp("two-seeds") / "repo")
    for part in ("data", "evals", *(f"checkpoints/{run}" for run in STARTS)):
        shutil.copytree(study_repo / part, repo / part, symlinks=True)
    (repo / "config" / "two-seeds.yaml").write_text(yaml.safe_dump(TWO_SEEDS))
    config = ("--configfile", "config/two-seeds.yaml")
    targets = [f"evals/{run}" for run in SLICE]
    plan = planned(run_tool(repo, "snakemake", "-n", *targets, *config))  # --configfile takes many
    run_tool(repo, "snakemake", "--cores", "2", *targets, *config)
    tables = repo / "results" / "tables"
    csv, pairs = str(tables / "evals.csv"), str(tables / "pairs.jsonl")
    run_tool(repo, "growup", "eval", "tidy", *config, "--evals", "evals", "--out", csv, "--pairs", pairs)
    out = str(repo / "results" / "claims.md")
    run_tool(repo, "growup", "report", "claims", *config, "--evals-csv", csv, "--pairs", pairs, "--out", out)
    return repo, plan


def intervals(claims_md: str, language: str) -> list[str]:
    """The interval column of every comparison of `language` in a claims report."""
    rows = [
        line.strip("| ").split(" | ") for line in claims_md.splitlines() if line.startswith(f"| {language} |")
    ]
    return [next(cell for cell in row if cell.startswith("[")) for row in rows]


@pytest.mark.slow
def test_a_second_seed_trains_only_its_runs_in_another_data_order(two_seed_slice, study_repo):
    repo, plan = two_seed_slice
    assert plan == {"train": 2, "eval_run": 2, "total": 4}, plan  # no start model, no data job
    for run in SLICE:
        assert read_card(repo / "checkpoints" / run / "final")["seed"] == 1
    ours, theirs = (
        [json.loads(line) for line in (root / "checkpoints" / run / "metrics.jsonl").read_text().splitlines()]
        for root, run in ((repo, "isl-2x-s1"), (study_repo, "isl-2x"))
    )
    assert [m["lr"] for m in ours] == [m["lr"] for m in theirs]  # the same schedule and start
    assert ours[0]["loss"] != theirs[0]["loss"]  # another first batch


@pytest.mark.slow
def test_the_slices_comparisons_carry_two_level_intervals_that_widen_as_seeds_disagree(
    two_seed_slice, study_repo
):
    repo, _ = two_seed_slice
    tables = repo / "results" / "tables"
    evals = pd.read_csv(tables / "evals.csv", dtype={"step": str})
    isl = evals[evals["model"].isin(["isl-2x", "isl-2x-s1"]) & (evals["task"] == "multiblimp_isl")]
    assert set(isl["seeds"]) == {2} and (isl["seed_ci_low"] <= isl["seed_mean"]).all()
    assert evals.loc[evals["model"] == "ekk-2x", "seeds"].isna().all()  # one seed: no seed level
    two, one = (root.joinpath("results", "claims.md").read_text() for root in (repo, study_repo))
    assert "two-level" in two and "two-level" not in one
    assert intervals(two, "isl") != intervals(one, "isl")  # Icelandic reads both seeds
    assert intervals(two, "ekk") == intervals(one, "ekk") and intervals(two, "ekk")  # the rest as before
    # the two seeds disagree on some pairs, so resampling them adds to the pair-level variance
    st = claims.Stats(Bootstrap(Pairs.load(tables / "pairs.jsonl"), 2000, 0), 0.95)
    last = str(load_config(repo / "config" / "config.yaml").training.schedules["isl"].steps)  # the final step
    measure = [
        (1.0, ("isl-2x", last, "multiblimp_isl", "acc")),
        (-1.0, ("isl-1x", last, "multiblimp_isl", "acc")),
    ]
    seeds = [st.boot.boot.cell(k).correct for k in st.boot.members(measure[0][1])]
    assert len(seeds) == 2 and (seeds[0] != seeds[1]).any()
    pair_level = sum(w * st.boot.pair_replicates(k) for w, k in measure)
    assert st.seed_variance(measure) > 0 and np.var(st.reps(measure)) > np.var(pair_level)
    two_level, fixed = interval(st.reps(measure), 0.95), interval(pair_level, 0.95)
    assert two_level[1] - two_level[0] >= fixed[1] - fixed[0]
    assert (repo / "results" / "figures" / "claims.png").stat().st_size > 1000
