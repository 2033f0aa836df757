"""One accounting of tokens and FLOPs: every consumer (budget, Snakemake resources, released
cards, `model count`, the clone's card, the tidy table, the training loop, `growup model fetch`)
equals figures derived here by hand, run by run, from STUDY.md's numbers (the paper config) and
from config/config.yaml's shapes and schedules (the mini study), never from `growup.accounting`."""

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
from helpers import skip_or_fail

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


ATTENTION_2X = 849_346_560  # 12 x 30 layers x 18 heads x 64 x 2,048
# STUDY.md's schedule table (the authors' train configs agree: tests/test_fidelity.py)
PAPER_STEPS = {"seed": 15244, "english": 3572, "ekk": 7087, "fao": 144, "isl": 2514, "fas": 5928}
PAPER_STEPS |= {"swe": 6279, "multilingual": 21940}
PAPER_GPUS = {"base": 32, "language": 16, "multilingual": 32}  # STUDY.md "Training"
# the mini model (config/config.yaml: hidden 96, intermediate 256, 4 layers, 6 / 2 heads of 16,
# vocabulary 2,048, tied), counted the same way: embedding 196,608; per layer 2 x 9,216 (q, o) +
# 2 x 3,072 (k, v) + 73,728 (mlp) + 192 (norms) = 98,496 (x 4); final norm 96. Its clone x2:
# embedding 393,216; per layer 73,728 + 24,576 + 294,912 + 384 = 393,600 (x 4); final norm 192.
N_MINI_1X, N_MINI_2X = 590_688, 1_967_808
ATTENTION_MINI_1X, ATTENTION_MINI_2X = 12 * 4 * 6 * 16 * 256, 12 * 4 * 12 * 16 * 256
MINI_STEPS = {"seed": 60, "english": 20, "multilingual": 40} | dict.fromkeys(
    ("ekk", "fao", "isl", "fas", "swe"), 20
)


def by_hand(steps: dict, tokens_per_step: int, per_token: dict, n: dict) -> dict[str, dict]:
    """Every trained run's card by hand: `steps x tokens_per_step` tokens at the per-token FLOPs of
    its model (1x or 2x), and as parents the runs its start went through (a clone adds nothing):
    seed; english-1x and english-2x after seed; <lang>-1x and <lang>-1x-cloned after seed and
    english-1x; <lang>-2x after seed and english-2x (the same for the joint multilingual run)."""

    def own(kind: str, model: str) -> dict:
        tokens = steps[kind] * tokens_per_step
        return {
            "step": steps[kind],
            "tokens": tokens,
            "flops": tokens * per_token[model],
            "flops_6n": tokens * 6 * n[model],
        }

    seed, english_1x, english_2x = own("seed", "1x"), own("english", "1x"), own("english", "2x")
    plan = {
        "seed": (own("seed", "1x"), []),
        "english-1x": (english_1x, [seed]),
        "english-2x": (english_2x, [seed]),
    }
    for lang in [k for k in steps if k not in ("seed", "english")]:
        plan[f"{lang}-1x"] = (own(lang, "1x"), [seed, english_1x])
        plan[f"{lang}-1x-cloned"] = (own(lang, "2x"), [seed, english_1x])
        plan[f"{lang}-2x"] = (own(lang, "2x"), [seed, english_2x])
    cards = {
        run: {
            **card,
            "parent_tokens": sum(p["tokens"] for p in parents),
            "parent_flops": sum(p["flops"] for p in parents),
        }
        for run, (card, parents) in plan.items()
    }
    cards["english-1x-cloned"] = {"step": 0, "tokens": 0, "flops": 0, "flops_6n": 0} | {
        "parent_tokens": seed["tokens"] + english_1x["tokens"],
        "parent_flops": seed["flops"] + english_1x["flops"],
    }
    return cards


PAPER_CARDS = by_hand(
    PAPER_STEPS,
    5120 * 2048,
    {"1x": 6 * N_1X + ATTENTION_1X, "2x": 6 * N_2X + ATTENTION_2X},
    {"1x": N_1X, "2x": N_2X},
)
MINI_CARDS = by_hand(
    MINI_STEPS,
    8 * 256,
    {"1x": 6 * N_MINI_1X + ATTENTION_MINI_1X, "2x": 6 * N_MINI_2X + ATTENTION_MINI_2X},
    {"1x": N_MINI_1X, "2x": N_MINI_2X},
)


def assert_card(got: dict, want: dict, run: str) -> None:
    """The card's accounting keys equal the hand figures (FLOPs to float rounding)."""
    keys = [k for k in want if k != "flops_6n" or "flops_6n" in got]
    assert {k: got[k] for k in keys} == pytest.approx({k: want[k] for k in keys}, rel=1e-12), run


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
        want = PAPER_CARDS[run]  # by hand, not by growup.accounting
        cost = run_cost(paper, run)
        lineage = planned_lineage(paper, run)
        row = budget[run]
        model = "1x" if row.params == N_1X else "clone-x2"
        assert row.params == (N_1X if run.endswith("-1x") or run in ("seed",) else N_2X), run
        assert (row.steps, row.tokens) == (want["step"], want["tokens"]), run
        assert (row.flops_6n, row.flops_attn) == pytest.approx(
            (want["flops_6n"], want["flops"]), rel=1e-12
        ), run
        resources = run_resources(paper, run)
        gpus = PAPER_GPUS[
            "base"
            if run.startswith(("seed", "english"))
            else "multilingual"
            if run.startswith("multilingual")
            else "language"
        ]
        assert resources["flops"] == pytest.approx(want["flops"], rel=1e-12), run
        assert resources["gpus"] == gpus, run
        minutes = want["flops"] / (paper.resources.flops_per_second * gpus) / 60
        assert resources["runtime"] == int(minutes * 1.5) + 10, run  # 1.5 x the FLOP estimate + 10 min
        # the size table's per-token FLOPs times the run's tokens
        assert per_token[model]["flops_per_token_attn"] * want["tokens"] == pytest.approx(
            want["flops"], rel=1e-12
        )
        assert per_token[model]["flops_per_token_6n"] * want["tokens"] == pytest.approx(
            want["flops_6n"], rel=1e-12
        )
        # a released checkpoint's card, and growup's own lineage
        card = released.planned_run(paper, run).card()
        assert_card(card, want, run)
        assert_card(lineage.card(), want, run)
        assert cost.tokens == want["tokens"]
        # the tidy table reads an evaluation's card block
        result = {"growup": {"model": run, "step": "final", **card}, "results": {"t": {"acc,none": 0.5}}}
        (tidy,) = rows_from_result(result, {})
        total = (want["tokens"] + want["parent_tokens"], want["flops"] + want["parent_flops"])
        assert (tidy["total_tokens"], tidy["total_flops"]) == pytest.approx(total, rel=1e-12), run
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
        want = MINI_CARDS[run]  # by hand
        last = json.loads((study_repo / "checkpoints" / run / "metrics.jsonl").read_text().splitlines()[-1])
        got = (last["tokens"], last["flops"], last["flops_6n"])
        assert got == pytest.approx((want["tokens"], want["flops"], want["flops_6n"]), rel=1e-12), run
        assert_card(read_card(study_repo / "checkpoints" / run / "final"), want, run)
        assert Lineage.from_card(read_card(study_repo / "checkpoints" / run / "final")) == planned_lineage(
            study, run
        )
        totals[(run, str(want["step"]))] = (
            want["tokens"] + want["parent_tokens"],
            want["flops"] + want["parent_flops"],
        )
    with (study_repo / "results" / "tables" / "evals.csv").open() as fh:
        rows = [r for r in csv.DictReader(fh) if (r["model"], r["step"]) in totals]
    assert {(r["model"], r["step"]) for r in rows} == set(totals) - {
        ("seed", str(run_cost(study, "seed").steps))
    }
    for row in rows:
        got = (int(row["total_tokens"]), float(row["total_flops"]))
        assert got == pytest.approx(totals[(row["model"], row["step"])], rel=1e-12), row["model"]
    # english-1x-cloned, the one clone the study evaluates: its own card
    assert_card(
        read_card(study_repo / "checkpoints" / "english-1x-cloned" / "final"),
        MINI_CARDS["english-1x-cloned"],
        "clone",
    )


def test_fetched_cards_are_the_hand_figures(hub_root, mini_data, tmp_path, monkeypatch):
    """`growup model fetch` (the released study's verb) writes each run's card with the tokens
    and FLOPs training would have recorded: the mini study's hand figures, for all 21 runs."""
    import subprocess
    import sys

    import yaml
    from test_released import ORG, standin_hub

    from growup.config import Study

    if hub_root is None:
        skip_or_fail("stand-in checkpoints are placed beside a local Hub mirror")
    mini = load_config(REPO / "config" / "config.yaml")
    hub = tmp_path / "hub"
    models = standin_hub(hub, Path(hub_root), mini, mini_data / "tokenizer")
    monkeypatch.setenv("GROWUP_HUB_ROOT", str(hub))
    raw = {**mini.raw, "study": "released", "released": {"models": models}}
    study = Study.from_mapping(raw)
    assert set(models) == set(MINI_CARDS) - {"seed"}
    for run in models:
        if run != "isl-2x":
            released.fetch(study, run, tmp_path / "checkpoints" / run)
    config = tmp_path / "released.yaml"
    config.write_text(yaml.safe_dump(raw))
    growup = str(Path(sys.executable).parent / "growup")
    out = tmp_path / "checkpoints" / "isl-2x"
    subprocess.run(
        [growup, "model", "fetch", "--configfile", str(config), "--run", "isl-2x", "--out", str(out)],
        check=True,
    )
    for run in models:
        card = read_card(tmp_path / "checkpoints" / run / "final")
        assert card["hub_id"] == f"{ORG}/{run}" and card["operation"] == "released", run
        assert_card(card, MINI_CARDS[run], run)
