"""growup's own merge methods, made for merging many specialists: TSV-M, Iso-C and Iso-CTS, as
mergekit methods (README "Merging beyond the paper").

Written here from the papers' definitions (Gargiulo et al., CVPR 2025, arXiv 2412.00081;
Marczak et al., ICML 2025, arXiv 2502.04959). Each is built with mergekit's public `merge_method`
decorator and registered in mergekit's registry through its public `register` by
`growup.mergekit_registry.register_plugins` (entry point group `growup.merge_methods` in
pyproject.toml), so a merge YAML names them like any built-in method. This module imports nothing
from growup: it is a mergekit plugin and nothing else.

For every method, Δ_t = w_t·(W_t − W_0) per task t (w_t the model's `weight`, 1.0 in the papers'
formulas). A 2-D tensor that is not a token embedding gets the method's spectral merge; every
other tensor (norms, biases, token embeddings: mergekit's tensors with a vocabulary axis) is the
weighted average of the task models. The SVDs run in float32 on the tensors' device; the result
is cast back to the dtype the inputs arrive in (the YAML's `dtype`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Annotated

import torch
from mergekit.merge_methods import (
    BasePolicy,
    InputContract,
    MergeMethod,
    PerNonBase,
    TensorGroup,
    merge_method,
)
from pydantic import Field

CONTRACT = InputContract(base=BasePolicy.REQUIRED, min_non_base=1)  # task vectors need a base
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]


def polar(x: torch.Tensor) -> torch.Tensor:
    """The orthogonal polar factor of `x` (P Qᵀ of its thin SVD P S Qᵀ): the matrix with
    orthonormal columns (or rows, when wide) closest to `x`."""
    p, _, qh = torch.linalg.svd(x, full_matrices=False)
    return p @ qh


def numerical_rank(s: torch.Tensor, shape: Sequence[int]) -> int:
    """How many singular values `s` (descending) are not zero to float32 precision (numpy's
    `matrix_rank` rule): the singular vectors of a zero singular value are arbitrary."""
    if s.numel() == 0 or float(s[0]) == 0.0:
        return 0
    tolerance = float(s[0]) * max(shape) * torch.finfo(torch.float32).eps
    return int((s > tolerance).sum())


def tsv_m_delta(deltas: Sequence[torch.Tensor], alpha: float) -> torch.Tensor:
    """TSV-M: the top ⌊r/T⌋ singular components of each Δ_t (r = min(m, n), at least one),
    concatenated (U, Σ, V across tasks), U and V replaced by their polar factors:
    α · U⊥ Σ V⊥ᵀ."""
    rows, cols = deltas[0].shape
    keep = max(1, min(rows, cols) // len(deltas))
    us, ss, vs = [], [], []
    for delta in deltas:
        u, s, vh = torch.linalg.svd(delta, full_matrices=False)
        us.append(u[:, :keep])
        ss.append(s[:keep])
        vs.append(vh[:keep].T)
    u_all, s_all, v_all = torch.cat(us, dim=1), torch.cat(ss), torch.cat(vs, dim=1)
    return alpha * (polar(u_all) * s_all) @ polar(v_all).T


def iso_c_delta(deltas: Sequence[torch.Tensor], alpha: float) -> torch.Tensor:
    """Iso-C: Δ = Σ_t Δ_t = U Σ Vᵀ with its spectrum replaced by the mean σ̄ of its nonzero
    singular values: α · σ̄ · U Vᵀ."""
    total = torch.stack(list(deltas)).sum(dim=0)
    u, s, vh = torch.linalg.svd(total, full_matrices=False)
    rank = numerical_rank(s, total.shape)
    if rank == 0:
        return torch.zeros_like(total)
    return alpha * s[:rank].mean() * (u[:, :rank] @ vh[:rank])


def iso_cts_delta(deltas: Sequence[torch.Tensor], alpha: float, common_fraction: float) -> torch.Tensor:
    """Iso-CTS: the top k = ⌊f·r⌋ directions of Δ = Σ_t Δ_t are the common subspace U_c; each
    task's component outside it, Δ_t − U_c U_cᵀ Δ_t, gives its top ⌊(r − k)/T⌋ directions;
    all are concatenated, U and V orthogonalised (polar factors), and the spectrum flattened at
    the mean σ̄ of the kept singular values: α · σ̄ · U⊥ V⊥ᵀ. f = 1 is Iso-C."""
    total = torch.stack(list(deltas)).sum(dim=0)
    r = min(total.shape)
    u, s, vh = torch.linalg.svd(total, full_matrices=False)
    common = min(math.floor(common_fraction * r), numerical_rank(s, total.shape))
    u_c = u[:, :common]
    us, ss, vs = [u_c], [s[:common]], [vh[:common].T]
    per_task = (r - common) // len(deltas)
    if per_task:
        for delta in deltas:
            outside = delta - u_c @ (u_c.T @ delta)
            ut, st, vht = torch.linalg.svd(outside, full_matrices=False)
            keep = min(per_task, numerical_rank(st, outside.shape))
            us.append(ut[:, :keep])
            ss.append(st[:keep])
            vs.append(vht[:keep].T)
    s_all = torch.cat(ss)
    if s_all.numel() == 0:
        return torch.zeros_like(total)
    return alpha * s_all.mean() * (polar(torch.cat(us, dim=1)) @ polar(torch.cat(vs, dim=1)).T)


def _merge(group: TensorGroup, weight: PerNonBase[float], spectral) -> torch.Tensor:
    """W_0 + spectral(Δ_1..Δ_T) for a 2-D weight matrix, the weighted average of the task models
    for any other tensor; computed in float32, returned in the inputs' dtype."""
    base = group.base.tensor
    entries = group.non_base
    weights = [float(w) for w in weight.values_for(entries)]
    w0 = base.to(torch.float32)
    deltas = [w * (e.tensor.to(torch.float32) - w0) for w, e in zip(weights, entries, strict=True)]
    if base.ndim == 2 and group.metadata.vocabulary_axis is None:
        merged = w0 + spectral(deltas)
    else:
        total = sum(weights)
        merged = w0 + torch.stack(deltas).sum(dim=0) / (total if abs(total) > 1e-8 else 1.0)
    return merged.to(base.dtype)


def _with_alpha(name: str, title: str, url: str, spectral: Callable[..., torch.Tensor]) -> MergeMethod:
    """A method whose only hyperparameter is the scale α of its spectral merge `spectral`."""

    def kernel(group: TensorGroup, weight: PerNonBase[float] = 1.0, alpha: float = 1.0) -> torch.Tensor:
        return _merge(group, weight, lambda deltas: spectral(deltas, alpha))

    kernel.__name__ = kernel.__qualname__ = name
    pretty = f"{title} (growup)"
    return merge_method(kernel, name=name, pretty_name=pretty, reference_url=url, contract=CONTRACT)


# TSV-M (Gargiulo et al. 2025): α = 1.0 as in the paper
tsv_m = _with_alpha("tsv_m", "TSV-M", "https://arxiv.org/abs/2412.00081", tsv_m_delta)
# Iso-C (Marczak et al. 2025): the paper tunes α on validation data; growup's default is 1.0
iso_c = _with_alpha("iso_c", "Iso-C", "https://arxiv.org/abs/2502.04959", iso_c_delta)


@merge_method(
    name="iso_cts",
    pretty_name="Iso-CTS (growup)",
    reference_url="https://arxiv.org/abs/2502.04959",
    contract=CONTRACT,
)
def iso_cts(
    group: TensorGroup,
    weight: PerNonBase[float] = 1.0,
    alpha: float = 1.0,
    common_fraction: Fraction = 0.8,
) -> torch.Tensor:
    """Iso-CTS (Marczak et al. 2025): common subspace fraction f = 0.8 as in the paper; α as Iso-C."""
    return _merge(group, weight, lambda deltas: iso_cts_delta(deltas, alpha, common_fraction))


METHODS = (tsv_m, iso_c, iso_cts)
