"""UniMax (Chung et al. 2023, arXiv 2304.09151): spread a character budget as uniformly as
possible over languages, with no language repeated more than `max_epochs` times.

Languages are visited from the smallest to the largest. Each is offered an equal share of what
is left; a language too small to use its share at `max_epochs` takes only `max_epochs` × its
size, and what it leaves is shared among the larger ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from growup.errors import GrowupError


@dataclass(frozen=True)
class Allocation:
    """One language's budget."""

    characters: int
    budget: float

    @property
    def epochs(self) -> float:
        return self.budget / self.characters


def unimax(characters: Mapping[str, int], budget: float, max_epochs: float) -> dict[str, Allocation]:
    """Per-language character budgets and epochs under UniMax."""
    if budget <= 0 or max_epochs <= 0:
        raise GrowupError(f"UniMax needs a positive budget and max_epochs, got {budget} and {max_epochs}")
    empty = [lang for lang, chars in characters.items() if chars <= 0]
    if empty:
        raise GrowupError(f"UniMax: languages {empty} have no characters")
    order = sorted(characters, key=lambda lang: (characters[lang], lang))
    remaining = float(budget)
    result: dict[str, Allocation] = {}
    for i, lang in enumerate(order):
        share = remaining / (len(order) - i)
        take = min(share, max_epochs * characters[lang])
        result[lang] = Allocation(characters[lang], take)
        remaining -= take
    return {lang: result[lang] for lang in characters}


@dataclass(frozen=True)
class EpochStage:
    """One pass over (a fraction of) a dataset with its own shuffle seed."""

    epoch: int
    fraction: float
    seed: int


def epoch_stages(epochs: float, seeds: Sequence[int]) -> list[EpochStage]:
    """Split `epochs` into whole passes plus a final partial one, each with the next seed.

    4.45 epochs with seeds (42, 137, 59, 888, 10, …) give four full passes and a 0.45 pass with seed 10.
    """
    if epochs <= 0:
        raise GrowupError(f"epochs must be positive, got {epochs}")
    full, part = int(epochs), epochs - int(epochs)
    fractions = [1.0] * full + ([part] if part > 1e-9 else [])
    if len(fractions) > len(seeds):
        raise GrowupError(
            f"{epochs:.3f} epochs need {len(fractions)} seeds but config key 'data.epoch_seeds' has {len(seeds)}"
        )
    return [EpochStage(i, f, seeds[i]) for i, f in enumerate(fractions)]
