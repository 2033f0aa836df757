"""Next-token cross entropy of a linear LM head, computed in chunks of tokens so that the full
(tokens × vocabulary) fp32 logits never exist, neither in the forward nor kept for the backward.

The full path (`causal_lm_loss`) materialises bf16 logits, their fp32 copy, the log-softmax and
its gradient: for 8 × 2,048 tokens and the paper's 128,256-way vocabulary that is 8.4 GB per fp32
tensor. Here a custom autograd Function walks the tokens in chunks of `chunk_size`; for each chunk
it computes the logits (in the autocast dtype, like the plain head), the fp32 log-softmax, the
summed loss, and at once the gradient with respect to the logits, which it folds into the
gradients of the hidden states and of the head weight before dropping the chunk. The backward only
scales those stored gradients, so nothing is recomputed (a checkpointed chunk would redo the head's
forward, +2·d·V FLOPs per token, about 14% of the 180M model's step).

Why not a kernel library: Liger-Kernel and Apple's cut-cross-entropy need Triton (CUDA only, not in
growup's locked dependencies) and neither runs on CPU, where the equivalence is tested. Peak extra
memory here is one chunk's logits (chunk × V in fp32, plus a copy in the autocast dtype) and an
fp32 weight-gradient buffer (V × d).

Same loss and gradients as the full path: the per-token terms are computed the same way; only the
order in which the weight gradient is summed over tokens changes (chunk by chunk instead of one
GEMM over all tokens), so results agree to fp32 rounding, and bit for bit with a single chunk.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.nn import functional as F

from growup.models.hyperllama import normalization_factor


def causal_lm_loss(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross entropy over every position that has a next token (fp32)."""
    return F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), tokens[:, 1:].flatten())


def _chunk_loss_and_grad(
    logits: torch.Tensor, targets: torch.Tensor, inv_n: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed cross entropy of one chunk and d(mean loss)/d(logits), in the logits' dtype.

    The gradient is the one `F.cross_entropy` computes: softmax minus one-hot, over the number of
    tokens, from the fp32 log-softmax.
    """
    logp = torch.log_softmax(logits.float(), dim=-1)
    picked = logp.gather(1, targets[:, None])
    upstream = torch.zeros_like(logp).scatter_(1, targets[:, None], -inv_n)  # d(mean)/d(logp)
    grad = torch._log_softmax_backward_data(upstream, logp, 1, logp.dtype)  # the kernel F.cross_entropy uses
    return -picked.sum(), grad.to(logits.dtype)


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any, hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, chunk: int, step: Any
    ) -> torch.Tensor:
        n = hidden.shape[0]
        inv_n = 1.0 / n
        need_h, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        grad_h = torch.empty_like(hidden) if need_h else None
        grad_w = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device) if need_w else None
        total = torch.zeros((), dtype=torch.float32, device=hidden.device)
        for start in range(0, n, chunk):
            h = hidden[start : start + chunk]
            logits = h @ weight.t()
            loss, dlogits = step(logits, targets[start : start + chunk], inv_n)
            total += loss
            if grad_h is not None:
                torch.mm(dlogits, weight, out=grad_h[start : start + chunk])
            if grad_w is not None:
                grad_w += (dlogits.t() @ h).float()
            del logits, dlogits
        ctx.save_for_backward(grad_h, grad_w)
        ctx.weight_dtype = weight.dtype
        return total * inv_n

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[Any, ...]:
        grad_h, grad_w = ctx.saved_tensors
        dh = None if grad_h is None else grad_h * grad_out.to(grad_h.dtype)
        dw = None if grad_w is None else (grad_w * grad_out).to(ctx.weight_dtype)
        return dh, dw, None, None, None


_COMPILED: dict[str, Any] = {}


def chunk_step(compiled: bool) -> Any:
    """The per-chunk math, compiled once per process when asked: inductor fuses the fp32 upcast,
    log-softmax and gradient into two passes over the chunk's logits instead of about five."""
    if not compiled:
        return _chunk_loss_and_grad
    if "step" not in _COMPILED:
        _COMPILED["step"] = torch.compile(_chunk_loss_and_grad, dynamic=False)
    return _COMPILED["step"]


def linear_cross_entropy(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    targets: torch.Tensor,
    chunk_size: int,
    compiled: bool = False,
) -> torch.Tensor:
    """Mean cross entropy of `hidden @ weight.T` against `targets`, chunk by chunk of tokens.

    `hidden` is (tokens, d), `weight` (V, d), `targets` (tokens,). Under autocast the head runs in
    the autocast dtype, as `F.linear` would; the loss and softmax are fp32.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    device = hidden.device.type
    if torch.is_autocast_enabled(device):
        dtype = torch.get_autocast_dtype(device)
        hidden, weight = hidden.to(dtype), weight.to(dtype)
    with torch.autocast(device, enabled=False):
        return _LinearCrossEntropy.apply(hidden, weight, targets, chunk_size, chunk_step(compiled))


def lm_loss(
    model: Any,
    tokens: torch.Tensor,
    positions: torch.Tensor,
    chunk_size: int | None,
    compiled: bool = False,
    **kwargs: Any,
) -> torch.Tensor:
    """Next-token loss of a (Hyper)Llama causal LM: through the model's own head and `causal_lm_loss`
    when `chunk_size` is None, else from the decoder's hidden states with `linear_cross_entropy`."""
    if chunk_size is None:
        logits = model(input_ids=tokens, position_ids=positions, **kwargs).logits
        return causal_lm_loss(logits, tokens)
    hidden = model.model(input_ids=tokens, position_ids=positions, **kwargs).last_hidden_state

    factor = normalization_factor(model.config)  # the config's, whichever class holds the head
    hidden = hidden[:, :-1].flatten(0, 1)
    if factor != 1:
        hidden = hidden / factor  # as NormalizedLMHead does, before the product
    return linear_cross_entropy(hidden, model.lm_head.weight, tokens[:, 1:].flatten(), chunk_size, compiled)
