"""HyperLlama: the normalised tied head, Auto registration, and the released checkpoint format."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file
from transformers import AutoConfig, AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

from growup.models.hyperllama import HyperLlamaConfig, HyperLlamaForCausalLM, to_plain_llama
from helpers import random_model, released_config_dict, tiny_config


def write_released(folder, factor: int, with_lm_head: bool, seed: int = 0) -> dict[str, torch.Tensor]:
    """A checkpoint in the released format: bf16 safetensors, tied head, transformers-4 config."""
    model = random_model(seed=seed, factor=factor)
    state = {k: v.to(torch.bfloat16).contiguous() for k, v in model.state_dict().items()}
    if not with_lm_head:
        state.pop("lm_head.weight")
    else:
        state["lm_head.weight"] = state["model.embed_tokens.weight"].clone()
    folder.mkdir(parents=True, exist_ok=True)
    save_file(state, folder / "model.safetensors", metadata={"format": "pt"})
    (folder / "config.json").write_text(json.dumps(released_config_dict(model.config, factor)))
    return state


@pytest.mark.parametrize("with_lm_head", [False, True])
def test_released_format_loads_and_equals_untied_plain_llama(tmp_path, real_tokens, with_lm_head):
    state = write_released(tmp_path / "released", factor=2, with_lm_head=with_lm_head)
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "released", dtype=torch.float32).eval()
    assert type(model) is HyperLlamaForCausalLM
    assert model.config.lm_head_normalization_factor == 2
    assert model.config.rope_parameters["rope_theta"] == 10000.0
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()

    plain_cfg = LlamaConfig(**{**model.config.to_dict(), "tie_word_embeddings": False})
    plain = LlamaForCausalLM(plain_cfg).eval()
    ref_state = {k: v.float() for k, v in state.items()}
    ref_state["lm_head.weight"] = ref_state["model.embed_tokens.weight"] / 2
    plain.load_state_dict(ref_state, strict=True)
    with torch.no_grad():
        ours, theirs = model(real_tokens).logits, plain(real_tokens).logits
    assert ours.abs().max() > 0.5
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6)


def test_factor_divides_logits(real_tokens):
    """The same weights under factor 2 give exactly half the logits of factor 1."""
    one = random_model(seed=3)
    two = HyperLlamaForCausalLM(tiny_config(factor=2)).eval()
    two.load_state_dict(one.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(two(real_tokens).logits, one(real_tokens).logits / 2, rtol=0, atol=0)


def test_loss_uses_normalised_logits(real_tokens):
    model = random_model(seed=4, factor=2)
    with torch.no_grad():
        out = model(real_tokens, labels=real_tokens)
    logits = out.logits[:, :-1].reshape(-1, out.logits.shape[-1])
    expected = torch.nn.functional.cross_entropy(logits, real_tokens[:, 1:].reshape(-1))
    torch.testing.assert_close(out.loss, expected)


def test_factor_one_saves_as_plain_llama(tmp_path, real_tokens):
    model = random_model(seed=5, factor=1.0)
    hyper = HyperLlamaForCausalLM(HyperLlamaConfig(lm_head_normalization_factor=1, **model.config.to_dict()))
    hyper.load_state_dict(model.state_dict())
    hyper.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["model_type"] == "llama" and saved["architectures"] == ["LlamaForCausalLM"]
    assert "lm_head_normalization_factor" not in saved
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    assert type(reloaded) is LlamaForCausalLM
    with torch.no_grad():
        torch.testing.assert_close(reloaded(real_tokens).logits, hyper.eval()(real_tokens).logits)


def test_hyperllama_roundtrip_keeps_type_and_factor(tmp_path):
    model = random_model(seed=6, factor=2)
    model.save_pretrained(tmp_path)
    assert AutoConfig.from_pretrained(tmp_path).lm_head_normalization_factor == 2
    assert json.loads((tmp_path / "config.json").read_text())["architectures"] == ["HyperLlamaForCausalLM"]


def test_to_plain_llama_refuses_a_real_factor():
    with pytest.raises(ValueError, match="factor"):
        to_plain_llama(random_model(factor=2))


@pytest.mark.parametrize("bad", [0, -1, "2"])
def test_config_rejects_bad_factor(bad):
    with pytest.raises((ValueError, TypeError)):
        HyperLlamaConfig(lm_head_normalization_factor=bad)
