"""Tokens, FLOPs and lineage totals of every run: computed here once, and read by the budget, the
Snakemake resources, the released checkpoints' cards, the training loop's log and the tables.

A run trains `steps × tokens_per_step` tokens; its FLOPs are those tokens times the per-token
cost of the model it trains (`growup.models.flops`: 6N, and 6N + attention). A checkpoint's
`Lineage` adds what its parents saw: a clone sees nothing itself and carries its source's
totals, so a run's lineage total is its own cost plus that of every run before it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from transformers import LlamaConfig

from growup import study as grid
from growup.config import Study
from growup.models.build import study_configs
from growup.models.flops import attention_flops_per_token, count_parameters, flops_per_token_6n


@dataclass(frozen=True)
class TokenCost:
    """Training cost of one token of a model: 6N, and 6N plus attention at a sequence length."""

    params: int
    flops_6n: float
    flops: float  # 6N + 12·L·H·Q·T


def token_cost(config: LlamaConfig, seq_len: int) -> TokenCost:
    """Per-token training FLOPs of a model config (what the loop logs and `model count` lists)."""
    params = count_parameters(config).total
    six_n = flops_per_token_6n(params)
    return TokenCost(params, six_n, six_n + attention_flops_per_token(config, seq_len))


@dataclass(frozen=True)
class RunCost:
    """What training one run of the study costs, by its schedule."""

    run: str
    model: str  # a key of study_configs: 1x or clone-x<k>
    params: int
    steps: int
    tokens: int
    flops_6n: float
    flops: float  # 6N + attention: the FLOPs the logged MFU counts


def run_cost(study: Study, run: str) -> RunCost:
    """Tokens and FLOPs of trained run `run` over its whole schedule."""
    model = grid.run_model(study, run)
    per_token = token_cost(study_configs(study)[model], study.training.sequence_length)
    steps = study.training.schedules[schedule_key(study, run)].steps
    tokens = steps * study.training.tokens_per_step
    return RunCost(
        run, model, per_token.params, steps, tokens, tokens * per_token.flops_6n, tokens * per_token.flops
    )


def schedule_key(study: Study, run: str) -> str:
    """The key of `training.schedules` a run trains by: its kind, or its language."""
    kind, lang, _ = grid.parse_run(study, run)
    return lang if kind == "language" else kind


@dataclass(frozen=True)
class Lineage:
    """The accounting a checkpoint's card records: its own step, tokens and FLOPs, and the totals
    of every checkpoint before it (`parent_*`; None where the card has no parent)."""

    step: int = 0
    tokens: int = 0
    flops: float = 0
    flops_6n: float | None = None
    parent_tokens: int | None = None
    parent_flops: float | None = None

    @property
    def total_tokens(self) -> int:
        return self.tokens + (self.parent_tokens or 0)

    @property
    def total_flops(self) -> float:
        return self.flops + (self.parent_flops or 0)

    def card(self) -> dict[str, Any]:
        """The card's accounting keys, in the card's order (unset ones left out)."""
        keys = ("step", "tokens", "flops", "flops_6n", "parent_tokens", "parent_flops")
        return {key: getattr(self, key) for key in keys if getattr(self, key) is not None}

    @classmethod
    def from_card(cls, card: Mapping[str, Any]) -> Lineage:
        """The lineage a checkpoint card (or an evaluation's `growup` block) records."""
        return cls(
            step=card.get("step", 0),
            tokens=card.get("tokens", 0),
            flops=card.get("flops", 0),
            flops_6n=card.get("flops_6n"),
            parent_tokens=card.get("parent_tokens", 0),
            parent_flops=card.get("parent_flops", 0),
        )

    def child(self) -> Lineage:
        """A fresh checkpoint made from this one (a clone; a run's step 0): nothing of its own yet."""
        return Lineage(parent_tokens=self.total_tokens, parent_flops=self.total_flops)


def start_lineage(study: Study, checkpoint_run: str) -> Lineage:
    """The planned lineage of `checkpoints/<checkpoint_run>/final`: init, a clone or a trained run."""
    if checkpoint_run == grid.INIT:
        return Lineage(flops=0.0, parent_tokens=0, parent_flops=0.0)
    source = grid.clone_of(checkpoint_run)
    if source is not None:
        return start_lineage(study, source).child()
    return planned_lineage(study, checkpoint_run)


def planned_lineage(study: Study, run: str) -> Lineage:
    """What training `run` by the study's schedule records: its own cost and its parents' totals."""
    cost = run_cost(study, run)
    parent = start_lineage(study, grid.start_run(study, run))
    return Lineage(
        step=cost.steps,
        tokens=cost.tokens,
        flops=cost.flops,
        flops_6n=cost.flops_6n,
        parent_tokens=parent.total_tokens,
        parent_flops=parent.total_flops,
    )
