"""Build the study's model from config: SmolLM2-135M's shape with the study's deviations
(gelu, rope theta 10,000, tied embeddings; STUDY.md "Architecture"), at any size."""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

from growup.config import ModelSpec, Study
from growup.errors import GrowupError
from growup.integrity import verify_tokenizer
from growup.models.cloning import cloned_config
from growup.models.hyperllama import llama_config
from growup.study import BASE_MODEL, clone_model


def base_config(spec: ModelSpec, vocab_size: int) -> LlamaConfig:
    """The 1x model's transformers config."""
    return llama_config(
        factor=1,
        vocab_size=vocab_size,
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_hidden_layers,
        num_attention_heads=spec.num_attention_heads,
        num_key_value_heads=spec.num_key_value_heads,
        head_dim=spec.head_dim,
        hidden_act=spec.hidden_act,
        rope_parameters={"rope_type": "default", "rope_theta": float(spec.rope_theta)},
        rms_norm_eps=spec.rms_norm_eps,
        max_position_embeddings=spec.max_position_embeddings,
        initializer_range=spec.initializer_range,
        tie_word_embeddings=spec.tie_word_embeddings,
    )


def study_configs(study: Study, vocab_size: int | None = None) -> dict[str, LlamaConfig]:
    """The base config and its clone (the model of the 1x-cloned and 2x setups), by the model keys
    of `growup.study` (`1x`, `clone-x<k>`)."""
    base = base_config(study.model, vocab_size or study.tokenizer.vocab_size)
    k = study.model.clone_factor
    return {BASE_MODEL: base, clone_model(k): cloned_config(base, k)}


def tokenizer_vocab_size(tokenizer_dir: str | os.PathLike[str], expected: int | None = None) -> int:
    """The vocabulary size of a saved tokenizer (len, so added special tokens count); check `expected`."""
    if not Path(tokenizer_dir).is_dir():
        raise GrowupError(f"tokenizer folder {str(tokenizer_dir)!r} does not exist")
    size = len(AutoTokenizer.from_pretrained(str(verify_tokenizer(tokenizer_dir))))
    if expected is not None and size != expected:
        raise GrowupError(
            f"tokenizer at {str(tokenizer_dir)!r} has {size} tokens but config key 'tokenizer.vocab_size' "
            f"is {expected}: set tokenizer.vocab_size to {size} or point at the tokenizer the config names"
        )
    return size


INIT_SCALINGS = ("none", "num_layers")


def init_model(config: LlamaConfig, seed: int, scaling: str = "none") -> LlamaForCausalLM:
    """A freshly initialised model (normal(0, initializer_range) weights, unit norms), seeded.

    `scaling` num_layers (config key `model.init_scaling`) divides the std of every o_proj and
    down_proj by sqrt(2 · layers): nanotron's default `scaling_method: NUM_LAYERS`, which the
    authors' configs leave in force (1/24 -> 1/24/sqrt(60) for 30 layers). The residual stream then
    grows less with depth.
    """
    if scaling not in INIT_SCALINGS:
        raise GrowupError(f"config key 'model.init_scaling' is {scaling!r}; allowed: {list(INIT_SCALINGS)}")
    # transformers initialises from the global torch RNG: seed a forked copy of it, so the
    # caller's random stream is the same after this call as before
    with torch.random.fork_rng(devices=[]):  # the CPU stream only: init runs on the CPU
        torch.default_generator.manual_seed(seed)
        model = LlamaForCausalLM(config).eval()
        if scaling == "num_layers":
            std = output_init_std(config.initializer_range, config.num_hidden_layers)
            with torch.no_grad():
                for layer in model.model.layers:
                    layer.self_attn.o_proj.weight.normal_(0.0, std)
                    layer.mlp.down_proj.weight.normal_(0.0, std)
    return model


def output_init_std(std: float, layers: int) -> float:
    """The std of the residual-output projections under nanotron's NUM_LAYERS scaling."""
    return std / math.sqrt(2 * layers)
