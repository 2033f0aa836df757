"""HyperLlama: Llama whose tied LM head divides the logits by a permanent normalization factor.

HyperCloning a tied model by k makes the tied weight [E, ..., E] (k copies), which multiplies
the logits by k; the released 572M checkpoints (`liu-nlp`, `model_type: hyperllama`) therefore keep
`lm_head_normalization_factor` = k and compute logits = h · (E' / k)ᵀ. The config keys here are those
of the released checkpoints, so they load with `AutoModelForCausalLM` once `growup` is imported.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    LlamaConfig,
    LlamaForCausalLM,
    LlamaModel,
)
from transformers.models.llama.modeling_llama import LlamaPreTrainedModel

MODEL_TYPE = "hyperllama"
FACTOR_KEY = "lm_head_normalization_factor"


class HyperLlamaConfig(LlamaConfig):
    """LlamaConfig plus `lm_head_normalization_factor` (1 means a plain Llama head)."""

    model_type = MODEL_TYPE
    lm_head_normalization_factor: float = 1

    def __post_init__(self, **kwargs: Any) -> None:
        super().__post_init__(**kwargs)
        factor = self.lm_head_normalization_factor
        if isinstance(factor, bool) or not isinstance(factor, int | float) or factor <= 0:
            raise ValueError(f"{FACTOR_KEY} must be a positive number, got {factor!r}")


class NormalizedLMHead(nn.Linear):
    """A bias-free linear head whose output is divided by `factor` (applied to the input: cheaper)."""

    def __init__(self, in_features: int, out_features: int, factor: float) -> None:
        super().__init__(in_features, out_features, bias=False)
        self.factor = factor

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        # (h / k) · Eᵀ equals h · (E / k)ᵀ, the released definition, and exactly so for powers of two.
        return F.linear(hidden / self.factor, self.weight)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, factor={self.factor}"


class HyperLlamaModel(LlamaModel):
    """The Llama decoder stack, under the `hyperllama` config (for `AutoModel`)."""

    config_class = HyperLlamaConfig


class HyperLlamaForCausalLM(LlamaForCausalLM):
    """LlamaForCausalLM with a `NormalizedLMHead`; everything else (loss, generation) is inherited."""

    config_class = HyperLlamaConfig

    def __init__(self, config: HyperLlamaConfig) -> None:
        # Build the Llama parts directly so the plain head is never allocated and then thrown away.
        LlamaPreTrainedModel.__init__(self, config)
        self.model = HyperLlamaModel(config)
        self.vocab_size = config.vocab_size
        self.lm_head = NormalizedLMHead(
            config.hidden_size, config.vocab_size, config.lm_head_normalization_factor
        )
        self.post_init()

    def save_pretrained(self, save_directory: str | os.PathLike[str], *args: Any, **kwargs: Any) -> Any:
        """Save as a plain `LlamaForCausalLM` when the factor is 1, so any Llama tool can read it."""
        if self.config.lm_head_normalization_factor == 1:
            return to_plain_llama(self).save_pretrained(save_directory, *args, **kwargs)
        return super().save_pretrained(save_directory, *args, **kwargs)


def llama_config(factor: float = 1, **kwargs: Any) -> LlamaConfig:
    """A `LlamaConfig` for factor 1, else a `HyperLlamaConfig` carrying the factor."""
    if factor == 1:
        return LlamaConfig(**kwargs)
    return HyperLlamaConfig(lm_head_normalization_factor=factor, **kwargs)


def normalization_factor(config: Any) -> float:
    """The LM-head normalization factor of any Llama-family config (1 for plain Llama)."""
    return getattr(config, FACTOR_KEY, 1)


def model_class(config: LlamaConfig) -> type[LlamaForCausalLM]:
    """The causal-LM class that matches a config."""
    return HyperLlamaForCausalLM if isinstance(config, HyperLlamaConfig) else LlamaForCausalLM


def plain_config_dict(config: LlamaConfig) -> dict[str, Any]:
    """The config as keyword arguments for another Llama config (no type, factor, or bookkeeping keys)."""
    drop = {"model_type", "architectures", "transformers_version", "_name_or_path", FACTOR_KEY}
    return {k: v for k, v in config.to_dict().items() if k not in drop}


def to_plain_llama(model: LlamaForCausalLM) -> LlamaForCausalLM:
    """The same weights under a plain `LlamaForCausalLM`; only valid when the factor is 1."""
    factor = normalization_factor(model.config)
    if factor != 1:
        raise ValueError(f"{FACTOR_KEY}={factor}: only a factor of 1 is a plain Llama")
    plain = build_with_weights(LlamaConfig(**plain_config_dict(model.config)), model.state_dict())
    return plain.to(model.dtype)


def build_with_weights(config: LlamaConfig, state: dict[str, torch.Tensor]) -> LlamaForCausalLM:
    """Instantiate the matching class for `config` without random init, then load `state` strictly."""
    from transformers.initialization import no_init_weights

    with no_init_weights():
        model = model_class(config)(config)
    if config.tie_word_embeddings:
        state = {k: v for k, v in state.items() if k != "lm_head.weight"}
    missing, unexpected = model.load_state_dict(state, strict=False)
    allowed_missing = {"lm_head.weight"} if config.tie_word_embeddings else set()
    if set(missing) - allowed_missing or unexpected:
        raise ValueError(f"weights do not fit the config: missing {sorted(missing)}, unexpected {unexpected}")
    model.tie_weights()
    return model.eval()


def register() -> None:
    """Register `hyperllama` with AutoConfig, AutoModel and AutoModelForCausalLM (idempotent).

    The classes also register for auto classes, so every saved HyperLlama checkpoint carries this
    file and an `auto_map`: plain transformers (or mergekit) loads it with `trust_remote_code=True`
    even where growup is not installed.
    """
    HyperLlamaConfig.register_for_auto_class()
    HyperLlamaForCausalLM.register_for_auto_class("AutoModelForCausalLM")
    AutoConfig.register(MODEL_TYPE, HyperLlamaConfig, exist_ok=True)
    AutoModel.register(HyperLlamaConfig, HyperLlamaModel, exist_ok=True)
    AutoModelForCausalLM.register(HyperLlamaConfig, HyperLlamaForCausalLM, exist_ok=True)
