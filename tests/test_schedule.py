"""The warmup-stable-decay schedule against the study's table."""

from __future__ import annotations

from itertools import pairwise

import pytest

from growup.config import ScheduleSpec
from growup.study import load_config
from growup.train.schedule import wsd_lr
from helpers import REPO

PAPER = load_config(REPO / "config" / "paper.yaml").training


@pytest.mark.parametrize("run", sorted(PAPER.schedules))
def test_paper_schedules(run):
    s, peak = PAPER.schedules[run], PAPER.peak_lr
    assert peak == 3e-3  # STUDY.md: peak LR 3e-3 for every run
    assert s.decay_start + s.decay_steps == s.steps  # decay ends on the last step
    assert 0.19 <= s.decay_steps / s.steps <= 0.215  # "linear decay to 0 over the last ~20% of steps"
    assert wsd_lr(1, s, peak) == pytest.approx(peak / s.warmup)
    assert wsd_lr(s.warmup, s, peak) == peak
    assert wsd_lr(s.decay_start, s, peak) == peak
    assert wsd_lr(s.decay_start + 1, s, peak) == pytest.approx(peak * (s.decay_steps - 1) / s.decay_steps)
    assert wsd_lr(s.steps, s, peak) == 0.0
    decay = [wsd_lr(t, s, peak) for t in range(s.decay_start, s.steps + 1)]
    assert all(a > b for a, b in pairwise(decay))


def test_table_values():
    # STUDY.md "Training": seed 15,244 steps, warmup 30, decay from 12,194 over 3,050.
    assert PAPER.schedules["seed"] == ScheduleSpec(15244, 30, 12194, 3050)
    assert PAPER.schedules["fao"] == ScheduleSpec(144, 10, 114, 30)
    assert PAPER.tokens_per_step == 5120 * 2048


def test_warmup_is_linear_and_min_lr_is_the_floor():
    s = ScheduleSpec(steps=10, warmup=4, decay_start=6, decay_steps=4)
    lrs = [wsd_lr(t, s, 1.0, minimum=0.1) for t in range(1, 12)]
    assert lrs[:4] == [0.25, 0.5, 0.75, 1.0]
    assert lrs[4:6] == [1.0, 1.0]
    assert lrs[6:10] == pytest.approx([0.775, 0.55, 0.325, 0.1])
    assert lrs[10] == 0.1
    with pytest.raises(ValueError):
        wsd_lr(0, s, 1.0)
