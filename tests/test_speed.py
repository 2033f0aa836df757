"""The training loop's speed switches against the plain path: chunked vs full loss, growup's
attention vs transformers', fused vs plain AdamW, compiled vs eager (20 optimizer steps each,
on CPU), and the chunked loss's peak memory at the paper's vocabulary and sequence length."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from growup.config import Study
from growup.errors import GrowupError
from growup.models import attention
from growup.models.build import base_config, init_model
from growup.train.loop import optimizer_step, setup_training, switch
from growup.train.loss import linear_cross_entropy, lm_loss
from growup.train.memory import peak_bytes
from helpers import random_model, tiny_raw

VOCAB = 256
STEPS = 20


def packed_positions(rows: int, length: int, gen: torch.Generator) -> torch.Tensor:
    """Position ids that restart at 0 at each row and at random document starts (as packing makes)."""
    positions = torch.empty(rows, length, dtype=torch.long)
    for r in range(rows):
        starts = sorted({0, *torch.randint(1, length, (3,), generator=gen).tolist()})
        for s, e in zip(starts, [*starts[1:], length], strict=True):
            positions[r, s:e] = torch.arange(e - s)
    return positions


def synthetic_steps(study: Study, steps: int, seed: int = 0) -> list[list[tuple[torch.Tensor, torch.Tensor]]]:
    t = study.training
    gen = torch.Generator().manual_seed(seed)
    accum = t.global_batch // t.micro_batch
    return [
        [
            (
                torch.randint(0, VOCAB, (t.micro_batch, t.sequence_length), generator=gen),
                packed_positions(t.micro_batch, t.sequence_length, gen),
            )
            for _ in range(accum)
        ]
        for _ in range(steps)
    ]


def train_steps(study: Study, steps: int = STEPS) -> tuple[list[float], dict[str, torch.Tensor]]:
    """Losses of `steps` optimizer steps on fixed synthetic batches, and the final weights."""
    from accelerate import Accelerator

    accelerator = Accelerator(mixed_precision="no")
    model = init_model(base_config(study.model, VOCAB), seed=0)
    model.config.use_cache = False
    net, optimizer = setup_training(study, model)
    net.train()
    net, optimizer = accelerator.prepare(net, optimizer)
    losses = [optimizer_step(study, accelerator, net, optimizer, b)[0] for b in synthetic_steps(study, steps)]
    return losses, {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_same_training(got: tuple, ref: tuple, rtol: float = 1e-5) -> None:
    """Losses agree to fp32 rounding; weights to 1e-4 (Adam turns rounding-level differences of
    near-zero gradients into updates of up to lr = 3e-3, so weights drift more than losses)."""
    torch.testing.assert_close(got[0], ref[0], rtol=rtol, atol=0)
    for k, v in got[1].items():
        torch.testing.assert_close(v, ref[1][k], rtol=1e-4, atol=1e-4)


def study(**training) -> Study:
    base = {"sequence_length": 64, "global_batch": 4, "micro_batch": 2, "compile": False}
    return Study.from_mapping(tiny_raw(**{**base, **training}))


@pytest.fixture(scope="module")
def plain() -> tuple[list[float], dict[str, torch.Tensor]]:
    return train_steps(study())


# --- chunked loss -------------------------------------------------------------------------------


def test_chunked_loss_equals_cross_entropy():
    gen = torch.Generator().manual_seed(0)
    hidden = torch.randn(100, 16, generator=gen, requires_grad=True)
    weight = torch.randn(300, 16, generator=gen, requires_grad=True)
    targets = torch.randint(0, 300, (100,), generator=gen)
    full = F.cross_entropy(F.linear(hidden, weight).float(), targets)
    gh, gw = torch.autograd.grad(full, (hidden, weight))
    one = linear_cross_entropy(hidden, weight, targets, chunk_size=100)
    oh, ow = torch.autograd.grad(one, (hidden, weight))
    # one chunk: the same kernels as F.cross_entropy, so bit for bit
    assert torch.equal(one, full) and torch.equal(oh, gh) and torch.equal(ow, gw)
    for chunk in (33, 7, 1):
        loss = linear_cross_entropy(hidden, weight, targets, chunk_size=chunk)
        ch, cw = torch.autograd.grad(loss, (hidden, weight))
        # several chunks: the token sums run chunk by chunk, so fp32 rounding differs slightly
        torch.testing.assert_close(loss, full, rtol=1e-6, atol=0)
        torch.testing.assert_close(ch, gh, rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(cw, gw, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("factor", [1, 2])
def test_lm_loss_chunked_equals_the_model_head(factor):
    model = random_model(seed=1, factor=factor).train()
    model.config.use_cache = False
    gen = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, 260, (2, 40), generator=gen)
    positions = packed_positions(2, 40, gen)
    params = [p for p in model.parameters()]
    full = lm_loss(model, tokens, positions, None)
    full_grads = torch.autograd.grad(full, params)
    chunked = lm_loss(model, tokens, positions, 16)
    grads = torch.autograd.grad(chunked, params)
    torch.testing.assert_close(chunked, full, rtol=1e-6, atol=0)
    for a, b in zip(grads, full_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


def test_chunked_loss_peak_memory_at_paper_vocabulary():
    """Vocabulary 128,256 at sequence length 2,048 (batch 1, hidden size 64): the chunked loss
    peaks at a small fraction of one fp32 logits tensor, the full path at several of them."""
    vocab, tokens, d, chunk = 128_256, 2047, 64, 128
    gen = torch.Generator().manual_seed(0)
    hidden = (torch.randn(tokens, d, generator=gen) * 0.5).requires_grad_()
    weight = (torch.randn(vocab, d, generator=gen) * 0.05).requires_grad_()
    targets = torch.randint(0, vocab, (tokens,), generator=gen)
    logits_bytes = tokens * vocab * 4
    out: dict[str, tuple] = {}

    def full() -> None:
        loss = F.cross_entropy(F.linear(hidden, weight).float(), targets)
        out["full"] = (loss.detach(), *torch.autograd.grad(loss, (hidden, weight)))

    def chunked() -> None:
        loss = linear_cross_entropy(hidden, weight, targets, chunk_size=chunk)
        out["chunked"] = (loss.detach(), *torch.autograd.grad(loss, (hidden, weight)))

    peak_full, peak_chunked = peak_bytes(full), peak_bytes(chunked)
    mib = {
        k: round(v / 2**20)
        for k, v in (("logits", logits_bytes), ("full", peak_full), ("chunked", peak_chunked))
    }
    print(f"peak memory, MiB: {mib}")
    assert peak_full >= 2 * logits_bytes
    assert peak_chunked < 0.5 * logits_bytes and peak_chunked < peak_full / 8
    (lf, hf, wf), (lc, hc, wc) = out["full"], out["chunked"]
    torch.testing.assert_close(lc, lf, rtol=1e-6, atol=0)
    torch.testing.assert_close(hc, hf, rtol=1e-5, atol=1e-9)
    torch.testing.assert_close(wc, wf, rtol=1e-5, atol=1e-9)


def test_chunked_training_matches_full_over_20_steps(plain):
    assert_same_training(train_steps(study(chunked_loss=True, loss_chunk_size=50)), plain, rtol=1e-5)


# --- attention ----------------------------------------------------------------------------------


def test_document_boundaries_follow_transformers():
    from transformers.masking_utils import find_packed_sequence_indices

    gen = torch.Generator().manual_seed(0)
    positions = packed_positions(3, 50, gen)
    positions[1] = torch.arange(50)
    cu, longest = attention.document_boundaries(positions)
    docs = find_packed_sequence_indices(positions)
    flat = (docs + torch.arange(3)[:, None] * 1000).flatten()  # a new document at each row, too
    expected = torch.nonzero(torch.diff(flat, prepend=flat[:1] - 1) != 0).flatten()
    assert cu[:-1].tolist() == expected.tolist() and cu[-1] == 150
    assert longest == 50


@pytest.mark.parametrize("documents", [False, True])
def test_growup_attention_matches_transformers(documents):
    """Without document masking the causal path makes transformers' own SDPA call (bit-identical);
    per-document attention equals transformers' dense packed mask to fp32 rounding."""
    gen = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, 260, (3, 48), generator=gen)
    positions = packed_positions(3, 48, gen)

    def run(name: str, **kwargs) -> tuple[torch.Tensor, list[torch.Tensor]]:
        model = random_model(seed=2).train()
        model.config.use_cache = False
        model.set_attn_implementation(name)
        loss = lm_loss(model, tokens, positions, None, **kwargs)
        return loss, list(torch.autograd.grad(loss, list(model.parameters())))

    attention.register()
    if documents:
        ref = run("sdpa")  # no mask: transformers masks per document from the reset positions
        cu, longest = attention.document_boundaries(positions)
        got = run(attention.NAME, cu_seq_lens_q=cu, max_length_q=longest)
        torch.testing.assert_close(got[0], ref[0], rtol=1e-6, atol=0)
        for a, b in zip(got[1], ref[1], strict=True):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    else:
        ref = run("sdpa", attention_mask=torch.ones_like(tokens))
        got = run(attention.NAME)
        assert torch.equal(got[0], ref[0])
        assert all(torch.equal(a, b) for a, b in zip(got[1], ref[1], strict=True))


def test_loop_attention_matches_transformers_over_20_steps(plain):
    assert_same_training(train_steps(study(attn_implementation="eager")), plain, rtol=1e-5)


# --- optimizer and compilation ----------------------------------------------------------------


def test_fused_adamw_matches_plain_over_20_steps(plain):
    assert_same_training(train_steps(study(fused_adamw=True)), plain, rtol=1e-6)


def test_compiled_matches_eager_over_20_steps(plain):
    # the compiled decoder layers and the compiled per-chunk loss math
    assert_same_training(train_steps(study(compile=True, chunked_loss=True, loss_chunk_size=50)), plain)


def test_switch_values():
    assert switch(True, "compile") is True and switch(False, "compile") is False
    assert switch("auto", "compile") is torch.cuda.is_available()
    with pytest.raises(GrowupError, match=r"training.compile.*'sometimes'.*auto, true, false"):
        switch("sometimes", "compile")
    raw = tiny_raw()
    for key in ("compile", "fused_adamw", "chunked_loss", "loss_chunk_size"):
        del raw["training"][key]
    t = Study.from_mapping(raw).training  # the schema's defaults
    assert (t.compile, t.fused_adamw, t.chunked_loss, t.loss_chunk_size) == ("auto", "auto", False, 1024)
