"""Random tiny Llama models and tiny study configs for tests."""

from __future__ import annotations

from pathlib import Path

import torch
import yaml
from transformers import LlamaConfig, LlamaForCausalLM

from growup.models.hyperllama import llama_config, model_class


def tiny_config(
    heads: int = 6, kv_heads: int = 2, head_dim: int = 8, factor: float = 1, tied: bool = True, **kw
) -> LlamaConfig:
    """A small Llama config with the study's deviations (gelu, rope 10,000) and 3:1 GQA by default."""
    args = dict(
        vocab_size=260,
        hidden_size=heads * head_dim,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        head_dim=head_dim,
        hidden_act="gelu",
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
        rms_norm_eps=1e-5,
        max_position_embeddings=128,
        tie_word_embeddings=tied,
    )
    args.update(kw)
    return llama_config(factor=factor, **args)


def randomize(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give every parameter random values (norm gains around 1), so no rule can pass by accident."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=gen)
            param.copy_(1 + 0.3 * noise if name.endswith("norm.weight") else 0.1 * noise)
    return model.eval()


def random_model(seed: int = 0, **kw) -> LlamaForCausalLM:
    config = tiny_config(**kw)
    return randomize(model_class(config)(config), seed)


def released_config_dict(config: LlamaConfig, factor: int) -> dict:
    """config.json as the released liu-nlp 572M checkpoints write it (transformers 4.x keys:
    top-level rope_theta, torch_dtype, auto_map to their remote code, `hyperllama` type and factor)."""
    return {
        "architectures": ["HyperLlamaForCausalLM"],
        "auto_map": {
            "AutoConfig": "configuration_hyperllama.HyperLlamaConfig",
            "AutoModelForCausalLM": "modeling_hyperllama.HyperLlamaForCausalLM",
        },
        "model_type": "hyperllama",
        "lm_head_normalization_factor": factor,
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "head_dim": config.head_dim,
        "hidden_act": config.hidden_act,
        "hidden_size": config.hidden_size,
        "initializer_range": 1 / 24,
        "intermediate_size": config.intermediate_size,
        "max_position_embeddings": config.max_position_embeddings,
        "mlp_bias": False,
        "num_attention_heads": config.num_attention_heads,
        "num_hidden_layers": config.num_hidden_layers,
        "num_key_value_heads": config.num_key_value_heads,
        "pretraining_tp": 1,
        "rms_norm_eps": config.rms_norm_eps,
        "rope_scaling": None,
        "rope_theta": 10000.0,
        "tie_word_embeddings": True,
        "torch_dtype": "bfloat16",
        "transformers_version": "4.46.0",
        "use_cache": True,
        "vocab_size": config.vocab_size,
    }


REPO = Path(__file__).resolve().parents[1]


def tiny_raw(**training) -> dict:
    """The mini config with a smaller model and short schedules, for tests."""
    raw = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    raw["model"].update(
        hidden_size=48,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=6,
        num_key_value_heads=2,
        head_dim=8,
    )
    raw["training"].update(global_batch=4, micro_batch=4, checkpoint_every={"base": 10, "adaptation": 10})
    raw["training"]["schedules"]["english"] = {"steps": 30, "warmup": 3, "decay_start": 24, "decay_steps": 6}
    raw["training"].update(training)
    return raw
