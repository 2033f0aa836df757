"""Seed replicates (`training.replicates`): names that parse back, the grid they add (every
language and multilingual run once per seed; base runs once), job specs that leave today's jobs
alone, the budget, the data order of a replicate, and the two-level bootstrap: an interval that
widens when seeds disagree."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
from synthetic_evals import study as synthetic_study

from growup.config import resolve_config
from growup.report import claims, power
from growup.report.stats import Bootstrap, Pairs, interval
from growup.study import (
    MULTILINGUAL,
    SETUPS,
    check_study,
    job_spec,
    merge_grid,
    parse_name,
    parse_run,
    replicate_name,
    run_seed,
    trained_runs,
)
from growup.train.budget import study_budget
from helpers import REPO


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
