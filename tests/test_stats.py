"""Bootstrap intervals, paired comparisons and the three-way verdict on per-pair results whose
true answer the test chooses."""

from __future__ import annotations

import math

import numpy as np
import pytest

from growup.errors import GrowupError
from growup.report.stats import (
    FAILS,
    HOLDS,
    INCONCLUSIVE,
    Bootstrap,
    Pairs,
    combine,
    compare,
    holm,
    interval,
    p_value,
)


def pairs_with(accuracies: dict[str, float], n: int, task: str = "t", seed: int = 0) -> Pairs:
    """One task, one cell per model with the given true accuracy; pairs drawn independently."""
    rng = np.random.default_rng(seed)
    pairs = Pairs()
    for model, p in accuracies.items():
        pairs.add((model, "final", task, "acc"), range(n), rng.random(n) < p)
    return pairs


def verdict(a: float, b: float, n: int, seed: int = 0) -> str:
    """The verdict of 'model a beats model b' on n shared pairs."""
    pairs = pairs_with({"a": a, "b": b}, n, seed=seed)
    boot = Bootstrap(pairs, 2000, 0)
    ka, kb = ("a", "final", "t", "acc"), ("b", "final", "t", "acc")
    c = compare({}, boot.point(ka) - boot.point(kb), boot.replicates(ka) - boot.replicates(kb), 0.95)
    return combine([c], 0.95)


def test_large_difference_on_many_pairs_holds_and_its_reverse_does_not():
    assert verdict(0.8, 0.6, 2000) == HOLDS
    assert verdict(0.6, 0.8, 2000) == FAILS


@pytest.mark.parametrize("seed", range(5))
def test_tiny_difference_on_50_pairs_is_inconclusive(seed):
    assert verdict(0.62, 0.60, 50, seed) == INCONCLUSIVE


def test_intervals_repeat_exactly_and_match_the_normal_approximation():
    n = 2000
    pairs = pairs_with({"m": 0.7}, n)
    key = ("m", "final", "t", "acc")
    first = interval(Bootstrap(pairs, 2000, 0).replicates(key), 0.95)
    again = interval(Bootstrap(pairs_with({"m": 0.7}, n), 2000, 0).replicates(key), 0.95)
    assert first == again
    p = pairs.cells[key].correct.mean()
    half = 1.959964 * math.sqrt(p * (1 - p) / n)
    assert abs(first[0] - (p - half)) < 0.01 and abs(first[1] - (p + half)) < 0.01
    other = interval(Bootstrap(pairs, 2000, 1).replicates(key), 0.95)
    assert other != first  # the seed matters


def test_pairing_shrinks_the_interval_of_a_difference():
    """Two models that agree on most pairs: the paired interval is far narrower than the unpaired one."""
    n = 500
    rng = np.random.default_rng(3)
    base = rng.random(n) < 0.7
    flipped = base.copy()
    flipped[rng.choice(n, 10, replace=False)] ^= True
    pairs = Pairs()
    pairs.add(("a", "final", "t", "acc"), range(n), base)
    pairs.add(("b", "final", "t", "acc"), range(n), flipped)
    boot = Bootstrap(pairs, 2000, 0)
    diff = boot.replicates(("a", "final", "t", "acc")) - boot.replicates(("b", "final", "t", "acc"))
    low, high = interval(diff, 0.95)
    assert high - low < 0.03  # unpaired: about 2 × 1.96 × sqrt(2 × 0.21 / 500) = 0.11


def test_a_cell_on_part_of_the_pairs_is_resampled_with_them():
    """A model scored on 100 of a task's 400 pairs (another `evaluation.limit`): its interval is
    that of 100 pairs, and its replicates do not depend on which other cells were asked first."""
    pairs = pairs_with({"full": 0.5}, 400)
    pairs.add(("part", "final", "t", "acc"), range(100), [1] * 60 + [0] * 40)
    key = ("part", "final", "t", "acc")
    first = Bootstrap(pairs, 2000, 0)
    reps = first.replicates(key)
    low, high = interval(reps, 0.95)
    assert first.point(key) == 0.6 and high - low == pytest.approx(2 * 1.96 * math.sqrt(0.24 / 100), abs=0.02)
    second = Bootstrap(pairs, 2000, 0)
    second.replicates(("full", "final", "t", "acc"))
    assert (second.replicates(key) == reps).all()
    with pytest.raises(GrowupError, match="no per-pair verdicts"):
        first.replicates(("absent", "final", "t", "acc"))


def test_pairs_file_round_trip(tmp_path):
    pairs = pairs_with({"a": 0.5, "b": 0.9}, 37)
    pairs.add(("c", "3", "u", "acc_norm"), [5, 2, 9], [1, 0, 1])
    pairs.save(tmp_path / "pairs.jsonl")
    back = Pairs.load(tmp_path / "pairs.jsonl")
    assert back.cells.keys() == pairs.cells.keys()
    for key, cell in pairs.cells.items():
        assert (back.cells[key].doc_ids == cell.doc_ids).all() and (
            back.cells[key].correct == cell.correct
        ).all()
    assert '"docs": [[0, 37]]' in (tmp_path / "pairs.jsonl").read_text()


def test_holm_and_p_values():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert p_value(np.full(999, 0.5)) == pytest.approx(2 / 1000)
    assert p_value(np.linspace(-1, 1, 1001)) == 1.0


def test_majority_of_decided_comparisons():
    def c(estimate, p):
        out = compare({}, estimate, np.array([estimate]), 0.95)
        out.p = p
        return out

    assert combine([c(0.1, 0.001), c(0.1, 0.001), c(-0.1, 0.5)], 0.95) == HOLDS
    assert combine([c(0.1, 0.001), c(-0.1, 0.001), c(0.1, 0.5)], 0.95) == INCONCLUSIVE
    assert combine([c(-0.1, 0.001), c(-0.1, 0.001), c(0.1, 0.5)], 0.95) == FAILS
    # Holm: 0.02 alone decides, three times 0.02 do not
    assert combine([c(0.1, 0.02)], 0.95) == HOLDS
    assert combine([c(0.1, 0.02)] * 3, 0.95) == INCONCLUSIVE


def test_bad_settings_name_the_key():
    with pytest.raises(GrowupError, match="report.confidence"):
        interval(np.zeros(10), 1.5)
    with pytest.raises(GrowupError, match="report.bootstrap_resamples"):
        Bootstrap(Pairs(), 10, 0)
