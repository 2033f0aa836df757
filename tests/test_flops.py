"""Parameter and FLOP accounting against STUDY.md's numbers and against instantiated models."""

from __future__ import annotations

import pytest

from growup.config import load_config
from growup.models.build import study_configs
from growup.models.flops import (
    count_model_parameters,
    count_parameters,
    flop_matched_step,
    flops_per_token,
    training_flops,
)
from helpers import REPO, random_model


@pytest.fixture(scope="module")
def paper():
    return study_configs(load_config(REPO / "config" / "paper.yaml"))


def test_paper_parameter_counts(paper):
    # STUDY.md "Architecture": 180.08M and 572.49M parameters.
    assert count_parameters(paper["1x"]).total / 1e6 == pytest.approx(180.08, abs=0.01)
    assert count_parameters(paper["clone-x2"]).total / 1e6 == pytest.approx(572.49, abs=0.01)
    assert count_parameters(paper["1x"]).embedding == 128256 * 576


def test_paper_flops_per_token(paper):
    # STUDY.md "FLOP matching": 6N 1.08 vs 3.43 GFLOP; with attention at 2,048: ≈1.51 vs 4.28.
    assert flops_per_token(paper["1x"]) / 1e9 == pytest.approx(1.08, abs=0.005)
    assert flops_per_token(paper["clone-x2"]) / 1e9 == pytest.approx(3.43, abs=0.01)
    assert flops_per_token(paper["1x"], 2048) / 1e9 == pytest.approx(1.51, abs=0.01)
    assert flops_per_token(paper["clone-x2"], 2048) / 1e9 == pytest.approx(4.28, abs=0.01)
    ratio = flops_per_token(paper["clone-x2"]) / flops_per_token(paper["1x"])
    assert ratio == pytest.approx(3.2, abs=0.05)  # STUDY.md: "a 572M run costs ≈3.2× a 180M run"


@pytest.mark.parametrize(
    "kw",
    [{}, {"tied": False}, {"attention_bias": True, "mlp_bias": True}, {"heads": 4, "kv_heads": 4}],
)
def test_analytic_count_equals_instantiated_model(kw):
    model = random_model(**kw)
    assert count_parameters(model.config) == count_model_parameters(model)


def test_paper_study_lists_english_run_cost(paper):
    # english 1x: 3,572 steps of 5,120 × 2,048 tokens ≈ 37.5B tokens (STUDY.md table).
    tokens_per_step = 5120 * 2048
    assert 3572 * tokens_per_step / 1e9 == pytest.approx(37.5, abs=0.05)
    flops = training_flops(flops_per_token(paper["1x"]), tokens_per_step, 3572)
    assert flops == pytest.approx(6 * count_parameters(paper["1x"]).total * 3572 * tokens_per_step)


def test_flop_matched_step(paper):
    small = flops_per_token(paper["1x"], 2048)
    large = flops_per_token(paper["clone-x2"], 2048)
    # The large run reaches the small run's compute at about 1/2.85 of its steps (with attention).
    assert flop_matched_step(2514, small, large) == round(2514 * small / large)
    assert flop_matched_step(0, small, large) == 0
    assert flop_matched_step(1000, large, small) == round(1000 * large / small)
    saved = list(range(0, 2515, 250))
    # 2514 · 1.505 / 4.284 ≈ 883.2: nearer the saved step 1000 than 750.
    assert flop_matched_step(2514, small, large, saved) == 1000
    assert flop_matched_step(2514, small, large, [0, 750]) == 750
    # A tie goes to the earlier step (never more compute than the reference).
    assert flop_matched_step(10, 1.0, 2.0, [4, 6]) == 4


def test_flop_matched_step_rejects_nonsense():
    with pytest.raises(ValueError):
        flop_matched_step(-1, 1.0, 2.0)
    with pytest.raises(ValueError):
        flop_matched_step(1, 0.0, 2.0)
    with pytest.raises(ValueError):
        flop_matched_step(1, 1.0, 2.0, [])
