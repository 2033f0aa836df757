"""growup's merge methods (TSV-M, Iso-C, Iso-CTS) through mergekit's public API, each against a
direct NumPy implementation of its formula computed here, and the properties the papers state."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from mergekit.merge_methods import TensorGroup, get, merge_tensors, registered_methods

from growup.mergekit_registry import plugins, register_plugins

METHODS = ("tsv_m", "iso_c", "iso_cts")


@pytest.fixture(scope="module", autouse=True)
def registered():
    register_plugins()


def random_models(shape, tasks, seed=0, scale=0.1):
    rng = np.random.default_rng(seed)
    base = rng.standard_normal(shape)
    return base, [base + scale * rng.standard_normal(shape) for _ in range(tasks)]


def merged(method, base, models, **parameters) -> np.ndarray:
    tensors = [torch.tensor(x, dtype=torch.float32) for x in (base, *models)]
    weight = parameters.pop("weight", None)
    if weight is not None:
        parameters["weight"] = {i + 1: w for i, w in enumerate(weight)}
    out = merge_tensors(tensors, method, base_index=0, parameters=parameters)
    assert out.dtype == torch.float32
    return out.double().numpy()


# --- the formulas, written once more with NumPy in float64 ---------------------------------
def np_polar(x):
    u, _, vt = np.linalg.svd(x, full_matrices=False)
    return u @ vt


def np_tsv_m(base, models, alpha=1.0, weight=None):
    weight = weight or [1.0] * len(models)
    deltas = [w * (m - base) for w, m in zip(weight, models, strict=True)]
    k = max(1, min(base.shape) // len(deltas))
    svds = [np.linalg.svd(d, full_matrices=False) for d in deltas]
    u = np.hstack([s[0][:, :k] for s in svds])
    sigma = np.concatenate([s[1][:k] for s in svds])
    v = np.hstack([s[2][:k].T for s in svds])
    return base + alpha * np_polar(u) @ np.diag(sigma) @ np_polar(v).T


def np_iso_c(base, models, alpha=1.0, weight=None):
    weight = weight or [1.0] * len(models)
    total = sum(w * (m - base) for w, m in zip(weight, models, strict=True))
    u, s, vt = np.linalg.svd(total, full_matrices=False)
    return base + alpha * s.mean() * u @ vt


def np_iso_cts(base, models, alpha=1.0, common_fraction=0.8, weight=None):
    weight = weight or [1.0] * len(models)
    deltas = [w * (m - base) for w, m in zip(weight, models, strict=True)]
    u, s, vt = np.linalg.svd(sum(deltas), full_matrices=False)
    r = min(base.shape)
    k = math.floor(common_fraction * r)
    us, sigmas, vs = [u[:, :k]], [s[:k]], [vt[:k].T]
    per_task = (r - k) // len(deltas)
    for d in deltas:
        outside = d - u[:, :k] @ u[:, :k].T @ d
        ut, st, vtt = np.linalg.svd(outside, full_matrices=False)
        us.append(ut[:, :per_task])
        sigmas.append(st[:per_task])
        vs.append(vtt[:per_task].T)
    flat = np.concatenate(sigmas).mean()
    return base + alpha * flat * np_polar(np.hstack(us)) @ np_polar(np.hstack(vs)).T


NUMPY = {"tsv_m": np_tsv_m, "iso_c": np_iso_c, "iso_cts": np_iso_cts}
CASES = [
    ((24, 16), 2, {}),
    ((16, 24), 3, {}),
    ((24, 16), 3, {"alpha": 1.7}),
    ((20, 20), 2, {"weight": [0.4, 1.3]}),
    ((24, 16), 2, {"alpha": 0.6, "common_fraction": 0.5}),
]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(("shape", "tasks", "parameters"), CASES)
def test_each_method_equals_its_formula_in_numpy(method, shape, tasks, parameters):
    if "common_fraction" in parameters and method != "iso_cts":
        parameters = {k: v for k, v in parameters.items() if k != "common_fraction"}
    base, models = random_models(shape, tasks, seed=sum(shape) + tasks)
    ours = merged(method, base, models, **dict(parameters))
    expected = NUMPY[method](base, models, **parameters)
    np.testing.assert_allclose(ours, expected, rtol=0, atol=2e-5)
    assert np.abs(ours - base).max() > 1e-3, "the merge moved the weights"


def test_tsv_m_of_one_task_at_full_rank_is_task_arithmetic():
    base, (model,) = random_models((12, 9), 1)
    ours = merged("tsv_m", base, [model])
    arithmetic = merge_tensors(
        [torch.tensor(x, dtype=torch.float32) for x in (base, model)], "task_arithmetic", base_index=0,
        parameters={"weight": 1.0},
    )  # fmt: skip
    np.testing.assert_allclose(ours, arithmetic.double().numpy(), rtol=0, atol=1e-5)
    np.testing.assert_allclose(ours, model, rtol=0, atol=1e-5)


def test_tsv_m_keeps_each_tasks_top_singular_values():
    """U⊥ and V⊥ have orthonormal columns, so the merged Δ/α has exactly the kept σ's."""
    base, models = random_models((24, 16), 3, seed=5)
    delta = (merged("tsv_m", base, models, alpha=2.0) - base) / 2.0
    kept = np.concatenate([np.linalg.svd(m - base, compute_uv=False)[: 16 // 3] for m in models])
    found = np.linalg.svd(delta, compute_uv=False)[: len(kept)]
    np.testing.assert_allclose(np.sort(found), np.sort(kept), rtol=1e-4)
    assert np.linalg.matrix_rank(delta, tol=1e-5) == len(kept)


def projector(x, rank):
    u = np.linalg.svd(x, full_matrices=False)[0][:, :rank]
    return u @ u.T


@pytest.mark.parametrize("rank", [None, 2])
def test_iso_c_has_a_flat_spectrum_in_the_spaces_of_the_summed_task_matrices(rank):
    """Equal singular values, and the row and column spaces of Σ_t Δ_t, also when that sum has
    low rank (then only its nonzero directions are kept)."""
    rng = np.random.default_rng(7)
    base, models = random_models((20, 14), 3, seed=7)
    if rank is not None:  # each task matrix of rank 2: the sum has rank 6
        models = [base + rng.standard_normal((20, rank)) @ rng.standard_normal((rank, 14)) for _ in models]
    total = sum(m - base for m in models)
    r = np.linalg.matrix_rank(total)
    delta = merged("iso_c", base, models) - base
    s = np.linalg.svd(delta, compute_uv=False)
    assert np.linalg.matrix_rank(delta, tol=1e-4 * s[0]) == r
    flat = np.linalg.svd(total, compute_uv=False)[:r].mean()
    np.testing.assert_allclose(s[:r], np.full(r, flat), rtol=1e-4)
    np.testing.assert_allclose(projector(delta, r), projector(total, r), atol=1e-4)
    np.testing.assert_allclose(projector(delta.T, r), projector(total.T, r), atol=1e-4)


@pytest.mark.parametrize(("shape", "tasks"), [((24, 16), 2), ((16, 24), 4)])
def test_iso_cts_with_the_whole_common_subspace_is_iso_c(shape, tasks):
    base, models = random_models(shape, tasks, seed=11)
    np.testing.assert_allclose(
        merged("iso_cts", base, models, common_fraction=1.0, alpha=1.3),
        merged("iso_c", base, models, alpha=1.3),
        rtol=0,
        atol=2e-5,
    )
    other = merged("iso_cts", base, models)  # f = 0.8: task-specific directions replace the last fifth
    assert np.abs(other - merged("iso_c", base, models)).max() > 1e-3


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(
    ("shape", "axis", "name"), [((7,), None, "model.norm.weight"), ((30, 8), 0, "model.embed_tokens.weight")]
)
def test_norms_and_token_embeddings_are_averaged(method, shape, axis, name):
    base, models = random_models(shape, 3, seed=3)
    group = TensorGroup.from_tensors(
        [torch.tensor(x, dtype=torch.float32) for x in (base, *models)],
        base_index=0, name=name, vocabulary_axis=axis,
    )  # fmt: skip
    weights = {1: 1.0, 2: 2.0, 3: 1.0}
    (out,) = get(method)((group,), parameters={"weight": weights})
    expected = (models[0] + 2 * models[1] + models[2]) / 4
    np.testing.assert_allclose(out.double().numpy(), expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("method", METHODS)
def test_half_precision_in_half_precision_out_computed_in_float32(method):
    base, models = random_models((24, 16), 2, seed=2)
    half = [torch.tensor(x, dtype=torch.float16) for x in (base, *models)]
    out = merge_tensors(half, method, base_index=0)
    assert out.dtype == torch.float16
    reference = merge_tensors([t.float() for t in half], method, base_index=0).to(torch.float16)
    assert torch.equal(out, reference)


@pytest.mark.parametrize("method", METHODS)
def test_no_change_merges_to_the_base_and_repeats_exactly(method):
    base, models = random_models((24, 16), 3, seed=4)
    tensors = [torch.tensor(base, dtype=torch.float32)] * 3
    assert torch.equal(merge_tensors(tensors, method, base_index=0), tensors[0])  # Δ = 0: no NaN
    first, again = (merged(method, base, models) for _ in range(2))
    assert first.tobytes() == again.tobytes()


def test_methods_are_registered_through_mergekits_registry():
    names = {m.spec.name for m in registered_methods()}
    assert set(METHODS) <= names
    assert plugins() == {m: f"growup.merge.methods:{m}" for m in METHODS}
    assert get("iso_cts").spec.reference_url == "https://arxiv.org/abs/2502.04959"
    declared = {p.name: p.default for p in get("iso_cts").spec.parameters}
    assert declared == {"weight": 1.0, "alpha": 1.0, "common_fraction": 0.8}  # the papers' defaults
    base, models = random_models((8, 6), 2)
    with pytest.raises(ValueError, match="less than or equal to 1"):
        merged("iso_cts", base, models, common_fraction=1.5)


def test_the_methods_module_is_a_plugin_that_imports_nothing_from_growup():
    """growup.merge.methods is loaded through its entry point at config load (a foundation
    module asks for it), so it must sit on no layer of growup's."""
    import ast
    from pathlib import Path

    import growup.merge.methods as methods

    tree = ast.parse(Path(methods.__file__).read_text(encoding="utf-8"))
    imported = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    imported += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert imported and not [m for m in imported if m.split(".")[0] == "growup"], imported
