"""Replay: fractions by document counts, nested samples, mixing weights."""

from __future__ import annotations

import pytest

from growup.data.replay import mixing_weights, replay_fractions, replay_indices
from growup.errors import GrowupError
from growup.study import load_config
from helpers import REPO


def test_fractions_scale_by_document_count_relative_to_the_largest():
    counts = {"swe": 1000, "fas": 990, "ekk": 170, "isl": 50, "fao": 10}
    assert replay_fractions(counts) == {"swe": 1.0, "fas": 0.99, "ekk": 0.17, "isl": 0.05, "fao": 0.01}


def test_reference_is_the_largest_language_not_a_fixed_one():
    assert replay_fractions({"swe": 50, "isl": 200}) == {"swe": 0.25, "isl": 1.0}


def test_paper_config_reproduces_published_fractions():
    # STUDY.md: Swedish gets the full set; Persian 99%, Estonian 17%, Icelandic 5%, Faroese 1%.
    study = load_config(REPO / "config" / "paper.yaml")
    counts = dict.fromkeys(study.data.language_codes, 1)  # counts are ignored when fractions are published
    fractions = replay_fractions(counts, study.data.replay_fractions)
    assert fractions == {"ekk": 0.17, "fao": 0.01, "isl": 0.05, "fas": 0.99, "swe": 1.0}
    assert (study.data.replay_english_fraction, study.data.replay_code_fraction) == (0.01, 0.05)


def test_published_fractions_must_cover_every_language():
    with pytest.raises(GrowupError, match=r"lacks languages \['isl'\]"):
        replay_fractions({"swe": 1, "isl": 1}, {"swe": 1.0})


def test_replay_samples_are_nested_and_sized():
    n = 10_000
    full = replay_indices(n, 0.01, 1.0, seed=42)
    half = replay_indices(n, 0.01, 0.5, seed=42)
    tiny = replay_indices(n, 0.01, 0.05, seed=42)
    assert len(full) == 100 and len(half) == 50 and len(tiny) == 5
    assert set(tiny) <= set(half) <= set(full)
    assert replay_indices(n, 0.01, 1.0, seed=43) != full
    assert full == replay_indices(n, 0.01, 1.0, seed=42)


def test_mixing_weights_proportional_to_samples():
    weights = mixing_weights({"swe": 300, "replay-swe": 100})
    assert weights == {"swe": 0.75, "replay-swe": 0.25}
    with pytest.raises(GrowupError):
        mixing_weights({"a": 0})
