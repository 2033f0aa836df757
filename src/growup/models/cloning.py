"""HyperCloning (Samragh et al. 2024, arXiv 2409.12903): widen a Llama by an integer factor k
so that the wide model computes exactly the function of the narrow one.

Rules, as the study ran them (STUDY.md, "HyperCloning"):
- embedding E (V×d) → [E, …, E] (V×kd); RMSNorm gain g → [g, …, g];
- every linear W (out×in: q, k, v, o, gate, up, down) → W.repeat(k, k) / k, its bias repeated k times;
- attention and kv heads are both multiplied by k with the head dim kept, so q head j (≥ H) is a
  copy of head j−H and reads kv head j//G, itself a copy: GQA grouping and attention are unchanged;
- the tied LM head becomes [E, …, E], whose logits are k times too large, so the
  `lm_head_normalization_factor` is multiplied by k (see `hyperllama.py`);
- an untied head W_out (V×d) becomes [W_out, …, W_out] / k (V×kd): with the last hidden state
  h' = [h, …, h], h'·W'ᵀ = Σᵢ h·W_outᵀ / k = h·W_outᵀ, so the logits are unchanged, the factor is
  kept, and the clone of a plain Llama (any Hub base with an untied head) stays a plain Llama.

With the input duplicated, each row block of W.repeat(k, k)/k returns W·x, so every hidden state
of the wide model is the narrow one repeated k times. Optional noise keeps this property: row block
i gets noise Nᵢ₀…Nᵢ₍ₖ₋₁₎ whose sum over column blocks is zero (Nᵢ₍ₖ₋₁₎ = −ΣNᵢⱼ), which adds ΣNᵢⱼ·x = 0.
"""

from __future__ import annotations

import math
import numbers

import torch
from transformers import LlamaConfig, PreTrainedModel

from growup.errors import GrowupError
from growup.models.hyperllama import build_with_weights, llama_config, normalization_factor, plain_config_dict


def check_factor(factor: object) -> int:
    """Return `factor` as an int if it is an integer ≥ 2, else raise naming the value."""
    if isinstance(factor, bool) or not isinstance(factor, numbers.Real) or factor != int(factor):
        raise GrowupError(f"clone factor must be an integer >= 2, got {factor!r}")
    if int(factor) < 2:
        raise GrowupError(f"clone factor must be an integer >= 2, got {factor!r}")
    return int(factor)


def cloned_config(config: LlamaConfig, factor: int) -> LlamaConfig:
    """The config of the k-times wider model: widths and head counts × k, head dim kept, and the
    head factor × k for a tied head (an untied one is divided by k instead: see the module)."""
    k = check_factor(factor)
    for key in ("num_attention_heads", "num_key_value_heads", "head_dim"):
        value = getattr(config, key, None)
        if not isinstance(value, int) or value < 1:
            raise GrowupError(
                f"cannot clone: config key {key!r} is {value!r}, a positive integer is required"
            )
    if config.num_attention_heads % config.num_key_value_heads:
        raise GrowupError(
            f"cannot clone: num_attention_heads={config.num_attention_heads} is not a multiple of "
            f"num_key_value_heads={config.num_key_value_heads}"
        )
    kwargs = plain_config_dict(config)
    for key in ("hidden_size", "intermediate_size", "num_attention_heads", "num_key_value_heads"):
        kwargs[key] = getattr(config, key) * k
    kwargs["head_dim"] = config.head_dim
    factor = normalization_factor(config) * (k if config.tie_word_embeddings else 1)
    return llama_config(factor=factor, **kwargs)


def noise_std(weight: torch.Tensor, factor: int, snr_db: float) -> float:
    """Noise std for a cloned block W/k at `snr_db`: rms(W/k) · 10^(−snr/20) (signal/noise power ratio)."""
    signal_rms = weight.double().div(factor).pow(2).mean().sqrt().item()
    return signal_rms * 10 ** (-snr_db / 20)


def clone_linear(
    weight: torch.Tensor, factor: int, snr_db: float | None = None, generator: torch.Generator | None = None
) -> torch.Tensor:
    """W (out×in) → W.repeat(k, k)/k, plus zero-sum-per-row-block noise when `snr_db` is given."""
    wide = weight.repeat(factor, factor) / factor
    if snr_db is None:
        return wide
    out_features, in_features = weight.shape
    std = noise_std(weight, factor, snr_db)
    noise = torch.randn(
        (factor, factor - 1, out_features, in_features), generator=generator, dtype=torch.float64
    ).mul_(std)
    blocks = torch.cat([noise, -noise.sum(dim=1, keepdim=True)], dim=1)  # (row block, col block, out, in)
    noise_full = blocks.permute(0, 2, 1, 3).reshape(factor * out_features, factor * in_features)
    return (wide.double() + noise_full).to(weight.dtype)


def clone_tensor(
    name: str,
    tensor: torch.Tensor,
    factor: int,
    snr_db: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Widen one named parameter of a Llama model by `factor`; unknown parameters are an error.
    `lm_head.weight` is a parameter of its own only when the head is untied."""
    if name.endswith("embed_tokens.weight"):
        return tensor.repeat(1, factor)
    if name.endswith("lm_head.weight"):
        return tensor.repeat(1, factor) / factor
    if name.endswith("norm.weight"):
        return tensor.repeat(factor)
    if name.endswith("_proj.weight"):
        return clone_linear(tensor, factor, snr_db, generator)
    if name.endswith("_proj.bias"):
        return tensor.repeat(factor)
    raise GrowupError(f"cannot clone parameter {name!r} (shape {tuple(tensor.shape)}): no HyperCloning rule")


def hyperclone(
    model: PreTrainedModel, factor: int = 2, snr_db: float | None = None, seed: int = 0
) -> PreTrainedModel:
    """Return a new model k times wider than `model` that computes the same logits.

    `snr_db` adds function-preserving noise at that signal-to-noise ratio (dB) to the linear layers;
    `None` (the study's choice) adds none. Embeddings and norms never get noise: they must stay duplicated.
    """
    k = check_factor(factor)
    if snr_db is not None and not math.isfinite(snr_db):
        raise GrowupError(f"snr_db must be a finite number of decibels or None, got {snr_db!r}")
    config = cloned_config(model.config, k)
    generator = torch.Generator().manual_seed(seed)
    state = {
        name: clone_tensor(name, param.detach(), k, snr_db, generator)
        for name, param in model.named_parameters()
    }
    return build_with_weights(config, state).to(model.dtype)
