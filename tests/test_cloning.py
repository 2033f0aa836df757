"""HyperCloning preserves the function: logits of the clone equal the source's."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, LlamaForCausalLM

from growup.errors import GrowupError
from growup.models.cloning import check_factor, clone_linear, cloned_config, hyperclone
from growup.models.hyperllama import HyperLlamaForCausalLM, normalization_factor
from helpers import random_model, tiny_config

FP32_BOUND = 1e-5
# bf16 keeps 8 mantissa bits: source and clone round differently (k times wider dot products, W/k
# inexact for k = 3), so their bf16 logits agree only to a few bf16 steps of the logit scale.
# Stated bound: max |Δ| ≤ max |logit| / 32 (measured: about /400 for k = 2 and /80 for k = 3).
BF16_BOUND = 1 / 32


def max_delta(a: torch.nn.Module, b: torch.nn.Module, tokens: torch.Tensor) -> float:
    with torch.no_grad():
        return (a(tokens).logits.float() - b(tokens).logits.float()).abs().max().item()


@pytest.mark.parametrize("factor", [2, 3])
@pytest.mark.parametrize("snr_db", [None, 10.0])
def test_clone_preserves_logits_fp32(real_tokens, factor, snr_db):
    source = random_model(seed=1)
    clone = hyperclone(source, factor, snr_db=snr_db, seed=7)
    assert clone.config.hidden_size == factor * source.config.hidden_size
    assert clone.config.num_attention_heads == factor * 6 and clone.config.num_key_value_heads == factor * 2
    assert clone.config.head_dim == source.config.head_dim
    assert clone.config.lm_head_normalization_factor == factor
    assert isinstance(clone, HyperLlamaForCausalLM)
    with torch.no_grad():
        logits = source(real_tokens).logits
    assert logits.abs().max() > 1.0, "logits too small for the bound to mean anything"
    assert max_delta(source, clone, real_tokens) <= FP32_BOUND


def test_noise_changes_weights_but_not_function(real_tokens):
    source = random_model(seed=2)
    plain = hyperclone(source, 2)
    noisy = hyperclone(source, 2, snr_db=10.0, seed=3)
    w_plain = plain.model.layers[0].mlp.up_proj.weight
    w_noisy = noisy.model.layers[0].mlp.up_proj.weight
    snr = 10 * torch.log10(w_plain.pow(2).mean() / (w_noisy - w_plain).pow(2).mean())
    assert abs(snr.item() - 10.0) < 0.5
    assert max_delta(source, noisy, real_tokens) <= FP32_BOUND


def test_naive_repeat_would_break_the_function(real_tokens):
    """The check is sharp: duplicating weights without the 1/k rescale changes the logits."""
    source = random_model(seed=3)
    clone = hyperclone(source, 2)
    with torch.no_grad():
        for layer in clone.model.layers:
            layer.mlp.down_proj.weight.mul_(2)
    assert max_delta(source, clone, real_tokens) > 1e-2


def test_clone_of_clone(real_tokens):
    source = random_model(seed=4)
    twice = hyperclone(hyperclone(source, 2), 2)
    assert twice.config.hidden_size == 4 * source.config.hidden_size
    assert twice.config.lm_head_normalization_factor == 4
    assert max_delta(source, twice, real_tokens) <= FP32_BOUND


@pytest.mark.parametrize("factor", [2, 3])
def test_clone_untied_head(real_tokens, factor, tmp_path):
    """An untied head W_out clones to [W_out, ..., W_out] / k: the logits are kept with the head
    factor kept, so the clone of a plain Llama (a Hub base) is a plain Llama, saved as one."""
    source = random_model(seed=5, tied=False)
    clone = hyperclone(source, factor)
    assert not clone.config.tie_word_embeddings and type(clone) is LlamaForCausalLM
    assert normalization_factor(clone.config) == 1
    head = source.lm_head.weight.detach()
    assert torch.equal(clone.lm_head.weight.detach(), head.repeat(1, factor) / factor)
    assert max_delta(source, clone, real_tokens) <= FP32_BOUND
    assert max_delta(source, hyperclone(clone, 2), real_tokens) <= FP32_BOUND  # a clone of the clone
    clone.save_pretrained(tmp_path)
    assert '"model_type": "llama"' in (tmp_path / "config.json").read_text()
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path, dtype=torch.float32)
    assert max_delta(source, reloaded, real_tokens) <= FP32_BOUND


def test_untied_head_without_the_division_would_break_the_function(real_tokens):
    """The check is sharp: an untied head repeated without the 1/k doubles every logit."""
    source = random_model(seed=5, tied=False)
    clone = hyperclone(source, 2)
    with torch.no_grad():
        clone.lm_head.weight.mul_(2)
    assert max_delta(source, clone, real_tokens) > 1e-2


def test_clone_with_biases(real_tokens):
    source = random_model(seed=6, attention_bias=True, mlp_bias=True)
    assert max_delta(source, hyperclone(source, 3), real_tokens) <= FP32_BOUND


@pytest.mark.parametrize("factor", [2, 3])
def test_clone_bf16_bound(real_tokens, factor):
    source = random_model(seed=8)
    with torch.no_grad():
        scale = source(real_tokens).logits.abs().max().item()
    clone = hyperclone(source, factor).to(torch.bfloat16)
    delta = max_delta(source.to(torch.bfloat16), clone, real_tokens)
    assert delta <= BF16_BOUND * scale


def test_saved_clone_reloads_through_auto(tmp_path, real_tokens):
    source = random_model(seed=9)
    clone = hyperclone(source, 2)
    clone.save_pretrained(tmp_path)
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path)
    assert type(reloaded) is HyperLlamaForCausalLM
    assert reloaded.model.embed_tokens.weight.data_ptr() == reloaded.lm_head.weight.data_ptr()
    assert max_delta(source, reloaded.eval(), real_tokens) <= FP32_BOUND


def test_clone_keeps_gqa_grouping():
    """Query head j of the clone reads the copy of the kv head its source head read: the clone's
    q rows of head j are source head j mod heads (inputs duplicated, so columns repeated and
    halved), and the k and v rows of the kv head transformers groups it with (j // group) are those
    of that source head's kv head."""
    source = random_model(seed=10)
    clone = hyperclone(source, 2)
    hd = source.config.head_dim
    heads, kv = source.config.num_attention_heads, source.config.num_key_value_heads
    wide_heads, wide_kv = clone.config.num_attention_heads, clone.config.num_key_value_heads
    assert (wide_heads, wide_kv) == (2 * heads, 2 * kv)

    def rows(attn, name: str, n: int) -> torch.Tensor:  # (heads, head_dim, in)
        return getattr(attn, name).weight.detach().view(n, hd, -1)

    src, wide = source.model.layers[0].self_attn, clone.model.layers[0].self_attn
    for j in range(wide_heads):
        head = j % heads  # the source head that clone head j copies
        want_q = rows(src, "q_proj", heads)[head].repeat(1, 2) / 2
        torch.testing.assert_close(rows(wide, "q_proj", wide_heads)[j], want_q)
        for name in ("k_proj", "v_proj"):
            got = rows(wide, name, wide_kv)[j // (wide_heads // wide_kv)]
            want = rows(src, name, kv)[head // (heads // kv)].repeat(1, 2) / 2
            torch.testing.assert_close(got, want, msg=f"clone head {j}: {name} of another group")


@pytest.mark.parametrize("snr_db", [None, 5.0])
@pytest.mark.parametrize("factor", [2, 3, 4])
def test_clone_linear_row_blocks_return_wx(factor, snr_db):
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(5, 7, generator=gen, dtype=torch.float64)
    x = torch.randn(7, generator=gen, dtype=torch.float64)
    wide = clone_linear(w, factor, snr_db, gen)
    torch.testing.assert_close(wide @ x.repeat(factor), (w @ x).repeat(factor))


@pytest.mark.parametrize("bad", [2.5, 1, 0, -2, True, "2", None])
def test_rejects_bad_factor(bad):
    with pytest.raises(GrowupError, match="integer >= 2"):
        check_factor(bad)


def test_integral_float_factor_is_accepted():
    assert check_factor(3.0) == 3


def test_rejects_missing_head_counts():
    config = tiny_config()
    object.__setattr__(config, "num_key_value_heads", None)
    with pytest.raises(GrowupError, match=r"num_key_value_heads.*None"):
        cloned_config(config, 2)


def test_clone_is_deterministic():
    source = random_model(seed=11)
    a = hyperclone(source, 2, snr_db=20.0, seed=5).state_dict()
    b = hyperclone(source, 2, snr_db=20.0, seed=5).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
