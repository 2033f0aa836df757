"""Parameter and training-FLOP accounting, so runs of different widths compare per FLOP.

Formulas (stated once, used everywhere):
- N = every parameter, a tied embedding counted once. The embedding share is the input embedding
  plus an untied output head; the rest is non-embedding.
- 6N FLOPs per trained token (Kaplan et al. 2020): forward 2N, backward 4N.
- 6N + 12·L·H·Q·T per trained token (PaLM, Chowdhery et al. 2022, app. B), adding the attention
  score and value products for L layers, H query heads of dimension Q and sequence length T
  (full T×T, no causal halving). For the study's 180M model at T = 2,048 this is 1.08 + 0.42 GFLOP.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from torch import nn
from transformers import LlamaConfig


@dataclass(frozen=True)
class ParamCount:
    """Parameter totals of one model."""

    total: int
    embedding: int

    @property
    def non_embedding(self) -> int:
        return self.total - self.embedding


def count_parameters(config: LlamaConfig) -> ParamCount:
    """Parameters of a Llama model from its config alone (no weights needed)."""
    d, inter, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    q_dim = config.num_attention_heads * config.head_dim
    kv_dim = config.num_key_value_heads * config.head_dim
    attn_bias = bool(getattr(config, "attention_bias", False))
    mlp_bias = bool(getattr(config, "mlp_bias", False))
    attention = 2 * d * q_dim + 2 * d * kv_dim + attn_bias * (q_dim + 2 * kv_dim + d)
    mlp = 3 * d * inter + mlp_bias * (2 * inter + d)
    per_layer = attention + mlp + 2 * d  # two RMSNorm gains
    embedding = config.vocab_size * d * (1 if config.tie_word_embeddings else 2)
    return ParamCount(total=layers * per_layer + d + embedding, embedding=embedding)


def count_model_parameters(model: nn.Module) -> ParamCount:
    """Parameters of an instantiated model; shared (tied) tensors are counted once."""
    seen: set[int] = set()
    total = embedding = 0
    for name, param in model.named_parameters(remove_duplicate=False):
        if id(param) in seen:
            continue
        seen.add(id(param))
        total += param.numel()
        if name.endswith(("embed_tokens.weight", "lm_head.weight")):
            embedding += param.numel()
    return ParamCount(total=total, embedding=embedding)


def flops_per_token_6n(n_params: int) -> float:
    """Training FLOPs per token by 6N."""
    return 6.0 * n_params


def attention_flops_per_token(config: LlamaConfig, seq_len: int) -> float:
    """The attention term 12·L·H·Q·T of training FLOPs per token."""
    return 12.0 * config.num_hidden_layers * config.num_attention_heads * config.head_dim * seq_len


def flops_per_token(config: LlamaConfig, seq_len: int | None = None) -> float:
    """Training FLOPs per token: 6N, plus 12·L·H·Q·T when a sequence length is given."""
    flops = flops_per_token_6n(count_parameters(config).total)
    if seq_len is not None:
        flops += attention_flops_per_token(config, seq_len)
    return flops


def training_flops(flops_per_tok: float, tokens_per_step: int, step: int) -> float:
    """Training FLOPs after `step` optimizer steps of `tokens_per_step` tokens each."""
    return flops_per_tok * tokens_per_step * step


def flop_matched_step(
    step: int,
    flops_per_step_a: float,
    flops_per_step_b: float,
    available_steps: Sequence[int] | None = None,
) -> int:
    """The step of run B whose training FLOPs equal those of run A at `step`.

    Without `available_steps` the exact ratio is rounded to the nearest step; with them, the saved
    step of B closest in FLOPs (ties go to the earlier step, which never exceeds A's compute).
    """
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    if flops_per_step_a <= 0 or flops_per_step_b <= 0:
        raise ValueError(f"FLOPs per step must be positive, got {flops_per_step_a} and {flops_per_step_b}")
    target = step * flops_per_step_a / flops_per_step_b
    if available_steps is None:
        return math.floor(target + 0.5)
    if not available_steps:
        raise ValueError("available_steps is empty: run B has no saved step to match")
    return min(sorted(available_steps), key=lambda s: abs(s - target))
