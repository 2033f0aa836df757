"""Training attention without dense masks: SDPA's causal kernel, or variable-length (per-document)
attention when a packed sequence keeps attention within each document.

transformers turns reset position ids into a (batch, 1, T, T) mask, which takes SDPA off its
flash kernel and costs T² memory per sequence. The training loop instead registers
`growup_sdpa` as the model's attention implementation and passes the document boundaries as
`cu_seq_lens_q` / `max_length_q` (transformers' names for packed sequences, computed once per
micro-batch on the host); no mask is ever built:

- no boundaries: `F.scaled_dot_product_attention(is_causal=True)`, the very call transformers'
  `sdpa` makes for an unmasked causal batch (so this path is bit-identical to it);
- boundaries on CUDA in bf16/fp16: `flash_attn_varlen_func` when flash-attn is installed, else
  torch's own `torch.nn.attention.varlen.varlen_attn` (the same flash kernels, shipped with torch);
- boundaries elsewhere (CPU, fp32): one causal SDPA call per document. Exact (attention within a
  document sees nothing else) and memory-light, though slower per token than a varlen kernel.

`growup_sdpa` is for training only: it never sees a padding mask (transformers drops masks for
implementations it has no mask builder for), and the loop never pads.
"""

from __future__ import annotations

import itertools
from typing import Any

import torch
from torch.nn import functional as F
from transformers.integrations.sdpa_attention import sdpa_attention_forward

NAME = "growup_sdpa"
T = torch.Tensor


def document_boundaries(positions: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Cumulative document lengths over the flattened (batch × T) tokens, and the longest document.

    A document starts at every row start and wherever a position does not follow its predecessor
    by one (transformers' rule in `find_packed_sequence_indices`). Call it on the host tensor.
    """
    rows, length = positions.shape
    starts = torch.ones_like(positions, dtype=torch.bool)
    starts[:, 1:] = positions[:, 1:] != positions[:, :-1] + 1
    idx = torch.nonzero(starts.flatten()).flatten()
    cu = torch.cat([idx, torch.tensor([rows * length])]).to(torch.int32)
    return cu, int((cu[1:] - cu[:-1]).max())


def _varlen_kernel() -> Any:
    """flash-attn's varlen function when installed, else torch's (resolved once, outside graphs)."""
    try:
        from flash_attn import flash_attn_varlen_func
    except ImportError:
        from torch.nn.attention.varlen import varlen_attn

        def kernel(q: T, k: T, v: T, cu: T, max_len: int, scale: float) -> T:
            return varlen_attn(
                q, k, v, cu, cu, max_len, max_len, scale=scale, window_size=(-1, 0), enable_gqa=True
            )

        return kernel

    def kernel(q: T, k: T, v: T, cu: T, max_len: int, scale: float) -> T:
        return flash_attn_varlen_func(q, k, v, cu, cu, max_len, max_len, softmax_scale=scale, causal=True)

    return kernel


_KERNEL: list[Any] = []


@torch.compiler.disable
def _per_document(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cu: torch.Tensor, scale: float
) -> torch.Tensor:
    """Causal SDPA over each document of (tokens, heads, dim) inputs; the host loop stays out of graphs.
    Key/value heads are repeated for GQA first: CPU SDPA with `enable_gqa` falls back to a slower kernel."""
    groups = q.shape[1] // k.shape[1]
    if groups > 1:
        k, v = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)

    def doc(x: torch.Tensor, s: int, e: int) -> torch.Tensor:
        return x[s:e].transpose(0, 1).unsqueeze(0)  # (1, heads, length, dim)

    out = [
        F.scaled_dot_product_attention(doc(q, s, e), doc(k, s, e), doc(v, s, e), is_causal=True, scale=scale)
        .squeeze(0)
        .transpose(0, 1)
        for s, e in itertools.pairwise(cu.tolist())
    ]
    return torch.cat(out)


def growup_sdpa(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    cu_seq_lens_q: torch.Tensor | None = None,
    max_length_q: int | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """A transformers attention function: (batch, heads, T, dim) in, (batch, T, heads, dim) out."""
    if attention_mask is not None:
        raise ValueError(f"{NAME} is a training path without padding; got an attention mask")
    if dropout:
        raise ValueError(f"{NAME} does not implement attention dropout")
    if cu_seq_lens_q is None:
        return sdpa_attention_forward(module, query, key, value, None, scaling=scaling, **kwargs)
    batch, heads, length, dim = query.shape
    scale = scaling if scaling is not None else dim**-0.5

    def flat(x: torch.Tensor) -> torch.Tensor:
        return x.transpose(1, 2).reshape(batch * length, x.shape[1], dim)

    q, k, v = flat(query), flat(key), flat(value)
    cu = cu_seq_lens_q.to(query.device, non_blocking=True)
    if _KERNEL and query.is_cuda and query.dtype in (torch.bfloat16, torch.float16):
        out = _KERNEL[0](q, k, v, cu, max_length_q or length, scale)
    else:
        out = _per_document(q, k, v, cu, scale)
    return out.view(batch, length, heads, dim), None


def register() -> None:
    """Make `growup_sdpa` a valid `attn_implementation` (idempotent)."""
    from transformers import AttentionInterface

    if not _KERNEL and torch.cuda.is_available():
        _KERNEL.append(_varlen_kernel())
    AttentionInterface.register(NAME, growup_sdpa)
