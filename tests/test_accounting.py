"""One accounting of tokens and FLOPs: every consumer (budget, Snakemake resources, released
cards, `model count`, the clone's card, the tidy table, the training loop) agrees with
`growup.accounting` on every run of the paper config, and english-1x matches a hand computation
from STUDY.md's numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from growup.accounting import Lineage, planned_lineage, run_cost, start_lineage, token_cost
from growup.evaluate.tidy import rows_from_result
from growup.fetch import run as released
from growup.integrity import write_checksums
from growup.models.build import study_configs
from growup.models.checkpoint import read_card
from growup.report.sizes import count_rows
from growup.study import load_config, parse_run, start_run, trained_runs
from growup.train.budget import study_budget
from growup.train.runs import run_resources

REPO = Path(__file__).resolve().parents[1]

# STUDY.md "Architecture", 1x model: vocab 128,256, hidden 576, intermediate 1,536, 30 layers,
# 9 query / 3 kv heads of dim 64, tied embedding. Counted by hand:
#   embedding 128,256 x 576                                   =  73,875,456
#   per layer: q, o 2 x 576 x 576 = 663,552; k, v 2 x 576 x 192 = 221,184;
#              mlp 3 x 576 x 1,536 = 2,654,208; two norms 1,152  =   3,540,096 (x 30 = 106,202,880)
#   final norm                                                  =         576
N_1X = 180_078_912  # STUDY.md: 180.08M
ATTENTION_1X = 424_673_280  # 12 x 30 layers x 9 heads x 64 x 2,048 (PaLM, app. B)
ENGLISH_TOKENS = 3572 * 5120 * 2048  # steps x sequences x tokens (STUDY.md "Training": ≈37.5B)
SEED_TOKENS = 15244 * 5120 * 2048  # STUDY.md: ≈159.8B
# the 2x model (hidden 1,152, intermediate 3,072, 18 / 6 heads of dim 64), counted the same way:
#   embedding 147,750,912; per layer 3,538,944 + 10,616,832 + 2,304 (x 30); final norm 1,152
N_2X = 572_494_464  # STUDY.md: 572.49M


@pytest.fixture(scope="module")
def paper():
    return load_config(REPO / "config" / "paper.yaml")


def test_english_1x_by_hand(paper):
    cost = run_cost(paper, "english-1x")
    assert (cost.model, cost.params, cost.steps, cost.tokens) == ("1x", N_1X, 3572, ENGLISH_TOKENS)
    assert cost.flops_6n == 6 * N_1X * ENGLISH_TOKENS
    assert cost.flops == (6 * N_1X + ATTENTION_1X) * ENGLISH_TOKENS
    # STUDY.md "FLOPs": 1.08 GFLOP per token by 6N, ≈1.51 with attention at 2,048
    assert round(cost.flops_6n / cost.tokens / 1e9, 2) == 1.08
    assert round(cost.flops / cost.tokens / 1e9, 2) == 1.51
    lineage = planned_lineage(paper, "english-1x")
    assert lineage.parent_tokens == SEED_TOKENS
    assert lineage.parent_flops == (6 * N_1X + ATTENTION_1X) * SEED_TOKENS
    assert lineage.total_tokens == SEED_TOKENS + ENGLISH_TOKENS
    assert round(SEED_TOKENS / 1e9, 1) == 159.8 and round(ENGLISH_TOKENS / 1e9, 1) == 37.5


def test_every_consumer_agrees_on_every_paper_run(paper):
    budget = {row.run: row for row in study_budget(paper)}
    per_token = {row["model"]: row for row in count_rows(study=paper)}
    runs = trained_runs(paper)
    assert len(runs) == 21 and set(budget) == set(runs)
    for run in runs:
        cost = run_cost(paper, run)
        lineage = planned_lineage(paper, run)
        row = budget[run]
        assert (row.model, row.params, row.steps, row.tokens) == (
            cost.model,
            cost.params,
            cost.steps,
            cost.tokens,
        )
        assert (row.flops_6n, row.flops_attn) == (cost.flops_6n, cost.flops), run
        assert run_resources(paper, run)["flops"] == int(cost.flops), run
        # the size table's per-token FLOPs times the run's tokens
        assert per_token[cost.model]["flops_per_token_attn"] * cost.tokens == cost.flops, run
        assert per_token[cost.model]["flops_per_token_6n"] * cost.tokens == cost.flops_6n, run
        # a released checkpoint's card
        card = released.planned_run(paper, run).card()
        assert card == {**lineage.card()} and card["flops"] == cost.flops, run
        # the tidy table reads an evaluation's card block
        result = {"growup": {"model": run, "step": "final", **card}, "results": {"t": {"acc,none": 0.5}}}
        (tidy,) = rows_from_result(result, {})
        assert (tidy["total_tokens"], tidy["total_flops"]) == (lineage.total_tokens, lineage.total_flops)
        # a run's parent totals are its start checkpoint's totals, through any clone
        start = start_lineage(paper, start_run(paper, run))
        assert (lineage.parent_tokens, lineage.parent_flops) == (start.total_tokens, start.total_flops)


def test_lineage_chains_through_the_clones(paper):
    seed = planned_lineage(paper, "seed")
    english_1x = planned_lineage(paper, "english-1x")
    english_2x = planned_lineage(paper, "english-2x")
    assert seed.parent_tokens == 0 and seed.tokens == SEED_TOKENS
    assert english_2x.parent_tokens == SEED_TOKENS  # from seed-cloned, which saw nothing itself
    assert run_cost(paper, "english-2x").tokens == ENGLISH_TOKENS
    assert english_2x.flops > english_1x.flops  # the wide model costs more per token
    clone = released.planned_run(paper, "english-1x-cloned")
    assert (clone.tokens, clone.flops, clone.total_tokens) == (0, 0.0, SEED_TOKENS + ENGLISH_TOKENS)
    for run in ("isl-1x-cloned", "multilingual-1x-cloned"):
        assert planned_lineage(paper, run).parent_tokens == SEED_TOKENS + ENGLISH_TOKENS
    isl_2x = planned_lineage(paper, "isl-2x")
    assert isl_2x.parent_tokens == english_2x.total_tokens
    kind, _, setup = parse_run(paper, "isl-2x")
    assert (kind, setup, run_cost(paper, "isl-2x").model) == ("language", "2x", "clone-x2")


def test_a_card_round_trips_and_a_clone_carries_its_source(paper):
    lineage = planned_lineage(paper, "fao-1x")
    assert Lineage.from_card(lineage.card()) == lineage
    child = lineage.child()
    assert (child.step, child.tokens, child.flops) == (0, 0, 0)
    assert (child.parent_tokens, child.parent_flops) == (lineage.total_tokens, lineage.total_flops)
    # a card written before any parent (the init checkpoint) has no parent keys
    assert Lineage().card() == {"step": 0, "tokens": 0, "flops": 0}


def test_the_loops_per_token_cost_is_the_models(paper):
    configs = study_configs(paper)
    for model, config in configs.items():
        cost = token_cost(config, paper.training.sequence_length)
        assert cost.flops_6n == 6 * cost.params
        assert cost.params == (N_1X if model == "1x" else N_2X)


def test_cli_clone_card_carries_the_parent_totals(tmp_path):
    """`growup model clone` writes the source's totals as parent_* (the card consumer)."""
    import subprocess
    import sys

    growup = str(Path(sys.executable).parent / "growup")
    mini = str(REPO / "config" / "config.yaml")
    src, out = tmp_path / "src", tmp_path / "clone"
    subprocess.run([growup, "model", "init", "--configfile", mini, "--out", str(src)], check=True)
    card = (src / "README.md").read_text(encoding="utf-8")
    seen = {"step": 7, "tokens": 1000, "flops": 5.0, "parent_tokens": 20, "parent_flops": 2.0}
    front = "---\n" + "growup:\n" + "".join(f"  {k}: {v}\n" for k, v in seen.items()) + "---\n"
    (src / "README.md").write_text(front + card.split("---\n", 2)[2], encoding="utf-8")
    write_checksums(src)  # the edited card is the checkpoint now (growup verifies what it reads)
    subprocess.run([growup, "model", "clone", "--checkpoint", str(src), "--out", str(out)], check=True)
    got = read_card(out)
    assert (got["parent_tokens"], got["parent_flops"], got["tokens"], got["flops"]) == (1020, 7.0, 0, 0)
    assert json.loads(json.dumps(got))["operation"] == "hyperclone x2"


@pytest.mark.slow
def test_a_built_study_logs_and_records_what_accounting_plans(study_repo):
    """The training loop's metrics, every checkpoint's card and the tidy table of a built study
    equal `growup.accounting` for its config (the mini study)."""
    import csv

    study = load_config(study_repo / "config" / "config.yaml")
    totals = {}  # (model, its last step) -> lineage totals
    for run in trained_runs(study):
        cost, lineage = run_cost(study, run), planned_lineage(study, run)
        last = json.loads((study_repo / "checkpoints" / run / "metrics.jsonl").read_text().splitlines()[-1])
        assert (last["tokens"], last["flops"], last["flops_6n"]) == (cost.tokens, cost.flops, cost.flops_6n)
        card = Lineage.from_card(read_card(study_repo / "checkpoints" / run / "final"))
        assert card == lineage, run
        totals[(run, str(cost.steps))] = (lineage.total_tokens, lineage.total_flops)
    with (study_repo / "results" / "tables" / "evals.csv").open() as fh:
        rows = [r for r in csv.DictReader(fh) if (r["model"], r["step"]) in totals]
    assert {(r["model"], r["step"]) for r in rows} == set(totals) - {
        ("seed", str(run_cost(study, "seed").steps))
    }
    for row in rows:
        assert (int(row["total_tokens"]), float(row["total_flops"])) == totals[(row["model"], row["step"])]
