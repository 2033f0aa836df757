"""Replay of English and code during language adaptation (STUDY.md "Data").

The reference language (the largest by training documents; Swedish in the paper) gets a random
`english_fraction` of the 80% English split and `code_fraction` of the code. Every other language
gets that same set scaled down by its document count relative to the reference, as a prefix of
the same random order, so smaller replay sets are subsets of larger ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from growup.errors import GrowupError


def replay_fractions(
    doc_counts: Mapping[str, int], published: Mapping[str, float] | None = None
) -> dict[str, float]:
    """Each language's share of the reference replay set: documents / reference documents.

    `published` fractions (the paper's, whose document counts are not public) win when given.
    """
    if published:
        missing = sorted(set(doc_counts) - set(published))
        if missing:
            raise GrowupError(f"config key 'data.replay.fractions' lacks languages {missing}")
        return {lang: float(published[lang]) for lang in doc_counts}
    if not doc_counts or min(doc_counts.values()) <= 0:
        raise GrowupError(f"replay needs positive document counts, got {dict(doc_counts)}")
    reference = max(doc_counts.values())
    return {lang: n / reference for lang, n in doc_counts.items()}


def replay_order(n_docs: int, seed: int) -> np.ndarray:
    """A seeded random order of `n_docs` documents (numpy PCG64: stable across platforms)."""
    return np.random.default_rng(seed).permutation(n_docs)


def replay_indices(n_docs: int, base_fraction: float, scale: float, seed: int) -> list[int]:
    """Indices of the replay sample: the first round(n · base · scale) of the seeded order."""
    if not 0 <= base_fraction <= 1 or not 0 <= scale <= 1:
        raise GrowupError(f"replay fractions must lie in [0, 1], got {base_fraction} and {scale}")
    count = round(n_docs * base_fraction * scale)
    return sorted(int(i) for i in replay_order(n_docs, seed)[:count])


def mixing_weights(sample_counts: Mapping[str, int]) -> dict[str, float]:
    """Mixing weights proportional to sample counts."""
    total = sum(sample_counts.values())
    if total <= 0:
        raise GrowupError(f"mixing weights need samples, got {dict(sample_counts)}")
    return {name: n / total for name, n in sample_counts.items()}


def select(items: Sequence[str], indices: Sequence[int]) -> list[str]:
    return [items[i] for i in indices]
