"""Scheduler resources of clone, merge and evaluation jobs follow the model size and the work,
checked against figures derived by hand from the formulas in growup.resources."""

from __future__ import annotations

import pytest

from growup.resources import (
    bundle_resources,
    clone_resources,
    eval_resources,
    merge_resources,
    model_params,
    run_checkpoints,
)
from growup.study import ENGLISH_CLONE, Merge, load_config
from helpers import REPO

MINI = load_config(REPO / "config" / "config.yaml")
PAPER = load_config(REPO / "config" / "paper.yaml")
N_1X, N_2X = 180_078_912, 572_494_464  # README, "Compute budget": 180.08M and 572.49M parameters


def test_model_sizes_are_the_accountings():
    assert (model_params(PAPER, "1x"), model_params(PAPER, "clone-x2")) == (N_1X, N_2X)
    assert (model_params(MINI, "1x"), model_params(MINI, "clone-x2")) == (590_688, 1_967_808)


def test_a_mini_merge_asks_for_a_gigabyte_not_sixteen():
    # linear isl+swe: 2 models + the output, 3 x 590,688 x 4 B = 7.09 MB -> 8 MB above the process
    res = merge_resources(MINI, Merge("1x", "linear", ("isl", "swe")))
    assert res == {"mem_mb": 1008, "runtime": 10, "gpus": 0, "threads": 1}


def test_a_paper_merge_holds_its_inputs_and_output():
    # dare_ties over five 2x models and their base: 7 x 572,494,464 x 4 B = 16,029.8 MB -> 16,030;
    # read and written at 100 MB/s: 160.3 s = 2.67 min, x 1.5 = 4.0 -> 4 + 10 = 14 min
    res = merge_resources(PAPER, Merge("2x", "dare_ties", ("ekk", "fao", "isl", "fas", "swe")))
    assert res == {"mem_mb": 1000 + 16_030, "runtime": 14, "gpus": 1, "threads": 16}
    # linear over two 1x models: 3 x 180,078,912 x 4 B = 2,160.9 MB -> 2,161
    res = merge_resources(PAPER, Merge("1x", "linear", ("ekk", "fao")))
    assert res["mem_mb"] == 1000 + 2_161 and res["runtime"] == 10


def test_an_evaluation_sweep_grows_with_checkpoints_tasks_and_model():
    # multilingual-2x: 21,940 steps / 250 = 87.8 -> 88 checkpoints; 8 tasks (MultiBLiMP x 6, BLiMP,
    # mPARAREL) x 67,000 pairs x 2 sentences x 32 tokens = 3.019e9 tokens x 2N = 3.456e18 FLOPs;
    # at 3e14 FLOP/s: 11,521 s = 192.0 min, x 1.5 = 288 + 10 = 298 min
    assert run_checkpoints(PAPER, "multilingual-2x") == 88
    res = eval_resources(PAPER, run="multilingual-2x")
    assert res["runtime"] == 298 and res["gpus"] == 1
    # memory: the model twice in float32, 2 x 572,494,464 x 4 B = 4,580 MB; logits stay on the GPU
    assert res["mem_mb"] == 1500 + 4_580
    # a 1x language run: its own MultiBLiMP and the English tasks
    assert eval_resources(PAPER, run="isl-1x")["mem_mb"] == 1500 + 1_441


def test_a_mini_evaluation_counts_the_cpu_batch_of_logits():
    # isl-1x on the CPU: 2 x 590,688 x 4 B = 4.7 -> 5 MB of weights; logits of 64 pairs x 256
    # tokens x 2,048 ids x 4 B = 134.2 -> 135 MB; 2 checkpoints x 3 tasks x 50 pairs: under a minute
    assert run_checkpoints(MINI, "isl-1x") == 2
    assert eval_resources(MINI, run="isl-1x") == {
        "mem_mb": 1500 + 5 + 135,
        "runtime": 10,
        "gpus": 0,
        "threads": 1,
    }
    merge = eval_resources(MINI, merge=Merge("2x", "ties", ("isl", "swe")))
    assert merge["mem_mb"] == 1500 + 16 + 135  # the 2x model: 2 x 1,967,808 x 4 B = 15.7 -> 16 MB
    assert eval_resources(MINI)["mem_mb"] == merge["mem_mb"]  # the English clone is a 2x model too


def test_a_clone_holds_source_and_clone_twice():
    # english-1x-cloned: 2 x (180,078,912 + 572,494,464) x 4 B = 6,020.6 MB -> 6,021
    assert clone_resources(PAPER, ENGLISH_CLONE) == {"mem_mb": 7_021, "runtime": 11, "gpus": 0, "threads": 16}
    assert clone_resources(MINI, "seed-cloned")["mem_mb"] == 1000 + 21  # 2 x 2,558,496 x 4 B = 20.5 MB


def test_a_bundle_asks_for_its_largest_job_and_the_sum_of_times():
    jobs = [
        {"mem_mb": 1008, "runtime": 10, "gpus": 0, "threads": 1},
        {"mem_mb": 1640, "runtime": 12, "gpus": 0, "threads": 1},
        {"mem_mb": 1200, "runtime": 10, "gpus": 1, "threads": 2},
    ]
    assert bundle_resources(jobs) == {"mem_mb": 1640, "runtime": 32, "gpus": 1, "threads": 2}
    with pytest.raises(ValueError, match="at least one job"):
        bundle_resources([])
