"""UniMax on hand-checked examples: uniform shares, the epoch cap, redistribution, the total."""

from __future__ import annotations

import pytest

from growup.data.unimax import epoch_stages, unimax
from growup.errors import GrowupError


def budgets(chars, budget, max_epochs):
    return {k: v.budget for k, v in unimax(chars, budget, max_epochs).items()}


def test_uniform_when_no_language_is_capped():
    assert budgets({"a": 100, "b": 200, "c": 300}, 150, 10) == {"a": 50, "b": 50, "c": 50}


def test_cap_and_redistribution():
    # a's share is 50 but 2 epochs of it is 20; the 30 it leaves goes to b and c (65 each).
    assert budgets({"a": 10, "b": 100, "c": 100}, 150, 2) == {"a": 20, "b": 65, "c": 65}


def test_cascading_caps():
    # a: share 100, cap 30 -> 30; b: share (300-30)/2 = 135, cap 90 -> 90; c takes the rest, 180.
    alloc = unimax({"c": 1000, "a": 10, "b": 30}, 300, 3)
    assert {k: v.budget for k, v in alloc.items()} == {"a": 30, "b": 90, "c": 180}
    assert alloc["a"].epochs == 3 and alloc["b"].epochs == 3 and alloc["c"].epochs == pytest.approx(0.18)
    assert list(alloc) == ["c", "a", "b"]  # input order kept


def test_total_equals_budget_when_data_suffices():
    chars = {"ekk": 17, "fao": 3, "isl": 8, "fas": 60, "swe": 64}
    for budget in (10, 50, 123.5, 400):
        assert sum(budgets(chars, budget, 6).values()) == pytest.approx(budget)


def test_total_is_capped_when_data_is_short():
    assert budgets({"a": 10, "b": 10}, 100, 2) == {"a": 20, "b": 20}


def test_paper_shape():
    # Two small languages capped at 6 epochs, the middle one between 1 and 6, the largest below 1.
    alloc = unimax({"fao": 1, "isl": 20, "ekk": 60, "fas": 400, "swe": 450}, 700, 6)
    assert alloc["fao"].epochs == 6 and alloc["isl"].epochs == 6
    assert 1 < alloc["ekk"].epochs < 6 and alloc["fas"].epochs < 1 and alloc["swe"].epochs < 1


def test_rejects_bad_inputs():
    with pytest.raises(GrowupError, match="no characters"):
        unimax({"a": 0}, 10, 2)
    with pytest.raises(GrowupError, match="positive"):
        unimax({"a": 5}, 0, 2)


def test_epoch_stages():
    seeds = [42, 137, 59, 888, 10, 903]  # STUDY.md's epoch seeds
    stages = epoch_stages(4.45, seeds)
    assert [(s.fraction, s.seed) for s in stages[:4]] == [(1.0, 42), (1.0, 137), (1.0, 59), (1.0, 888)]
    assert stages[4].seed == 10 and stages[4].fraction == pytest.approx(0.45)
    assert [s.seed for s in epoch_stages(6, seeds)] == seeds
    assert [(s.fraction, s.seed) for s in epoch_stages(1, seeds)] == [(1.0, 42)]
    assert epoch_stages(0.3, seeds)[0].fraction == pytest.approx(0.3)
    with pytest.raises(GrowupError, match="data.epoch_seeds"):
        epoch_stages(6.5, seeds)
