"""What a comparison can decide: the minimum detectable difference and the pairs needed of the
paired design, checked by simulating studies whose true difference the test chooses and deciding
each as the claims report does (pair bootstrap, p-value against the boundary); the margin of
"match or surpass" and its δ = 0 limit; the two-level bootstrap over seeds and pairs."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from synthetic_evals import study

from growup.errors import GrowupError
from growup.report import claims, power
from growup.report.power import Design, mdd, pairs_needed, simulated_power
from growup.report.stats import INCONCLUSIVE, Bootstrap, Pairs, combine, p_value

CONFIDENCE = 0.95
TOLERANCE = 0.03  # the acceptance band around 80% power; 4,000 draws give a standard error of 0.006


def design(n: int, discordant: float, difference: float = 0.0) -> Design:
    """Two models on n pairs: the given discordant share, split to give the difference."""
    plus = round(n * (discordant + difference) / 2)
    minus = round(n * (discordant - difference) / 2)
    return Design.of([np.array([1] * plus + [-1] * minus + [0] * (n - plus - minus))])


@pytest.mark.parametrize(
    ("n", "discordant", "boundary"),
    [(50, 0.4, 0.0), (200, 0.3, 0.0), (500, 0.15, 0.0), (300, 0.3, -0.02)],
    ids=["50 pairs", "200 pairs", "500 pairs", "non-inferiority δ=0.02"],
)
def test_a_true_difference_of_one_mdd_is_decided_80_percent_of_the_time(n, discordant, boundary):
    m = mdd(design(n, discordant), boundary, CONFIDENCE)
    rate = simulated_power(n, discordant, boundary + m, boundary, CONFIDENCE)
    assert abs(rate - power.POWER) <= TOLERANCE, f"MDD {m:.4f}: decided in {rate:.1%} of studies"
    # a true difference of half the MDD is decided far less often (the check has teeth)
    assert simulated_power(n, discordant, boundary + m / 2, boundary, CONFIDENCE) < 0.5


@pytest.mark.parametrize(("observed", "discordant"), [(0.06, 0.3), (0.1, 0.4)])
def test_the_pairs_needed_decide_the_observed_difference_80_percent_of_the_time(observed, discordant):
    pilot = design(100, discordant, observed)  # an undecided comparison on 100 pairs
    estimate = pilot.mean[0]
    needed = pairs_needed(pilot, estimate, 0.0, CONFIDENCE)
    assert needed > 100
    rate = simulated_power(math.ceil(needed), pilot.second[0], estimate, 0.0, CONFIDENCE)
    assert abs(rate - power.POWER) <= TOLERANCE, f"{needed:.0f} pairs: decided in {rate:.1%}"


def test_design_of_two_models_is_the_mcnemar_table():
    pairs = Pairs()
    a = np.array([1, 1, 0, 0, 1, 0, 1, 1, 0, 1])
    b = np.array([1, 0, 0, 1, 1, 0, 0, 1, 0, 0])
    pairs.add(("a", "final", "t", "acc"), range(10), a)
    pairs.add(("b", "final", "t", "acc"), range(10), b)
    st = claims.Stats(Bootstrap(pairs, 200, 0), CONFIDENCE)
    d = st.design([(1.0, ("a", "final", "t", "acc")), (-1.0, ("b", "final", "t", "acc"))])
    assert d.pairs == (10,) and d.discordant == 0.4 and d.second == (0.4,) and d.mean == (0.2,)
    # Connor's McNemar sample size without continuity correction, k²(d - Δ²)/Δ²: ours adds the
    # correction, so it asks for a little more
    k = 1.959964 + 0.841621
    assert pairs_needed(d, 0.2, 0.0, CONFIDENCE) == pytest.approx(k * k * (0.4 - 0.04) / 0.04, rel=0.1)
    assert pairs_needed(d, 0.0, 0.0, CONFIDENCE) == math.inf
    assert mdd(Design.of([np.zeros(10)]), 0.0, CONFIDENCE) < 0.06  # only the continuity correction


def test_seed_variance_widens_the_mdd_and_can_make_more_pairs_useless():
    per_pair = [np.array([1] * 30 + [-1] * 30 + [0] * 140)]
    pure, noisy = Design.of(per_pair), Design.of(per_pair, seed_var=0.002)
    assert mdd(noisy, 0.0, CONFIDENCE) > mdd(pure, 0.0, CONFIDENCE)
    assert pairs_needed(noisy, 0.05, 0.0, CONFIDENCE) == math.inf  # 0.05² < k² · 0.002: more seeds
    assert pairs_needed(noisy, 0.2, 0.0, CONFIDENCE) < math.inf


def markdown(mode: str, n: int, margin: float) -> str:
    df, pairs = study(mode, n=n)
    return claims.claims_markdown(
        df, pairs, confidence=CONFIDENCE, resamples=1000, seed=0, spread=0.05, study="t", margin=margin
    )


def rows(text: str, claim: str) -> list[list[str]]:
    section = text.split(f"## {claim}. ", 1)[1].split("\n## ", 1)[0]
    return [
        line.strip("| ").split(" | ")
        for line in section.splitlines()
        if line.startswith("| ") and re.search(r"\[[+-]\d\.\d{3}, [+-]\d\.\d{3}\]", line)
    ]


@pytest.mark.parametrize(("mode", "n"), [("better", 2000), ("worse", 2000), ("tiny", 200)])
def test_a_zero_margin_gives_the_superiority_verdicts(mode, n):
    """δ = 0: 1a and 1b are decided exactly as the superiority test decided them (p against 0)."""
    _, pairs = study(mode, n=n)
    text = markdown(mode, n, margin=0.0)
    boot = Bootstrap(pairs, 1000, 0)
    for claim in ("1a", "1b"):
        for row in rows(text, claim):
            lang, _, _, checkpoint = row[:4]
            model, _, step = checkpoint.split(" (")[0].partition(" step ")
            task = f"multiblimp_{lang}"
            diff = boot.replicates((model, step, task, "acc")) - boot.replicates(
                (f"{lang}-1x", "20", task, "acc")
            )
            assert row[7] == claims._p(p_value(diff, 0.0))
    assert "δ = 0 accuracy points (0.000" in text


def test_a_margin_lets_a_tie_match_and_keeps_a_loss_a_loss():
    """Differences of +0.02 on 2,000 pairs: not a decided win (δ = 0), but within a 3-point
    margin (decided: match); a loss of 0.2 stays decided against under the same margin."""
    verdict = re.compile(r"^## (1[ab])\. .*: \*\*(holds|does not hold|inconclusive)\*\*$", re.M)
    undecided = {"1a": "inconclusive", "1b": "inconclusive"}
    assert dict(verdict.findall(markdown("tiny", 2000, margin=0.0))) == undecided
    tied = markdown("tiny", 2000, margin=3.0)
    assert dict(verdict.findall(tied)) == {"1a": "holds", "1b": "holds"}
    assert "non-inferiority with margin δ = 3 accuracy points (0.030)" in tied
    lost = {"1a": "does not hold", "1b": "does not hold"}
    assert dict(verdict.findall(markdown("worse", 2000, margin=3.0))) == lost


def test_every_comparison_shows_its_power():
    text = markdown("tiny", 200, margin=1.0)
    for claim in ("1a", "1b", "2", "3a", "3b", "4"):
        for row in rows(text, claim):
            decided, pairs, discordant, detectable, needed = row[-5:]
            assert decided in {"for", "against", "undecided"}
            assert re.fullmatch(r"(\d+×)?\d+", pairs) and 0 < float(discordant) <= 1
            assert 0 < float(detectable) < 1
            assert needed == "decided" if decided != "undecided" else re.fullmatch(r"[\d,]+|never.*", needed)


def test_a_negative_margin_is_refused():
    with pytest.raises(GrowupError, match="report.margin"):
        power.non_inferiority(-0.01)


def test_two_models_that_agree_on_every_pair_are_not_decided_by_a_margin():
    """A point interval (no discordant pair) says nothing about a true difference of several
    points: with δ > 0 it must stay undecided, not "match"."""
    pairs = Pairs()
    verdicts = np.array([1, 0] * 25)
    for model in ("isl-1x", "isl-2x"):
        pairs.add((model, "20", "multiblimp_isl", "acc"), range(50), verdicts)
    st = claims.Stats(Bootstrap(pairs, 500, 0), CONFIDENCE)
    measure = [
        (1.0, ("isl-2x", "20", "multiblimp_isl", "acc")),
        (-1.0, ("isl-1x", "20", "multiblimp_isl", "acc")),
    ]
    c = st.compare({}, measure, power.non_inferiority(0.01))
    assert (c.low, c.high, c.discordant) == (0.0, 0.0, 0.0)
    assert combine([c], CONFIDENCE) == INCONCLUSIVE and claims._needed(c).startswith("n/a")
