"""Every merge method of the study's grid, run through mergekit, against its definition computed
here by hand on tiny models whose numbers make each step decidable:

- every weight is a multiple of 1/64 below 4 in magnitude, so float16 holds it exactly;
- each task vector has a clearly larger half (magnitudes 65/64 and up against 60/64 and down),
  so TIES's magnitude pruning at density 0.5 keeps exactly that half, whatever the sort;
- model i's magnitudes are 8q + (1, 2, 4)[i] sixty-fourths, so no signed sum of kept entries is
  zero and TIES's sign election never meets a tie;
- for DARE and DELLA (random drops) the three task vectors have disjoint supports, so each kept
  entry shows its model's L1 rescaling factor on its own.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from growup.config import Study
from growup.merge import grid
from growup.merge.run import run_merge
from growup.models.checkpoint import save_checkpoint
from helpers import random_model, tiny_raw

LANGS = ("ekk", "fao", "isl")
RESIDUES = (1, 2, 4)  # no signed sum of one residue each (mod 8) is 0: sums of kept entries never vanish
SHAPE = dict(heads=2, kv_heads=1, head_dim=4, vocab_size=16, intermediate_size=8, num_hidden_layers=1)
# float16 keeps the inputs exactly; a result is rounded at most twice (the disjoint mean, then
# base + delta) at magnitudes below 4: under 2^-9 in all, while a wrong rule is off by >= 1/192
ROUNDING = 2**-9


def study() -> Study:
    raw = tiny_raw()
    raw["merging"]["methods"] = {
        **raw["merging"]["methods"],
        "della": {"base": True, "model_parameters": {"density": 0.5, "epsilon": 0.1}},
        "karcher": {"base": False},
        "breadcrumbs_ties": {"base": True, "parameters": {"normalize": True, "int8_mask": True}},  # as ties
    }
    return Study.from_mapping(raw)


def tokenizer(folder: Path) -> Path:
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    vocab = {f"t{i}": i for i in range(SHAPE["vocab_size"])}
    tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel(vocab, unk_token="t0")))
    tok.save_pretrained(folder)
    return folder


def task_vector(shape: torch.Size, model: int, gen: torch.Generator, disjoint: bool) -> torch.Tensor:
    """Signed magnitudes (8q + RESIDUES[model]) / 64: a larger half (q >= 8) at random places, or
    (disjoint) every third entry, the model's own, and zero elsewhere."""
    n = shape.numel()
    q = torch.randint(0, 8, (n,), generator=gen)
    if disjoint:
        q = torch.where(torch.arange(n) % 3 == model, torch.randint(0, 16, (n,), generator=gen), -1)
    else:
        q[torch.randperm(n, generator=gen)[: n // 2]] += 8
    magnitude = torch.where(q >= 0, 8 * q + RESIDUES[model], 0).double()
    sign = torch.randint(0, 2, (n,), generator=gen).double() * 2 - 1
    return (sign * magnitude / 64).reshape(shape)


def write_models(root: Path, disjoint: bool) -> tuple[dict, list[dict]]:
    """english-1x (the base) and ekk/fao/isl-1x = base + task vector, as checkpoints under root."""
    gen = torch.Generator().manual_seed(1 if disjoint else 0)
    model = random_model(**SHAPE)
    params = dict(model.named_parameters())  # the tied head once, as the embedding
    base = {k: torch.randint(-64, 65, v.shape, generator=gen).double() / 64 for k, v in params.items()}
    inputs = [{k: v + task_vector(v.shape, i, gen, disjoint) for k, v in base.items()} for i in range(3)]
    tok = tokenizer(root / "tokenizer")
    runs = {"english-1x": base, **{f"{lang}-1x": w for lang, w in zip(LANGS, inputs, strict=True)}}
    for run, weights in runs.items():
        with torch.no_grad():
            for k, v in weights.items():
                params[k].copy_(v)
        save_checkpoint(model, root / run / "final", {"operation": "test"}, tokenizer_src=tok)
    return base, inputs


@pytest.fixture(scope="module")
def overlapping(tmp_path_factory) -> tuple[Path, dict, list[dict]]:
    root = tmp_path_factory.mktemp("overlapping")
    return root, *write_models(root, disjoint=False)


@pytest.fixture(scope="module")
def disjoint(tmp_path_factory) -> tuple[Path, dict, list[dict]]:
    root = tmp_path_factory.mktemp("disjoint")
    return root, *write_models(root, disjoint=True)


def merged(root: Path, method: str, out: Path) -> dict[str, torch.Tensor]:
    config = grid.merge_config(study(), grid.Merge("1x", method, LANGS), root)
    folder = run_merge(config, out, 0)
    return {k: v.double() for k, v in load_file(folder / "model.safetensors").items()}


def ties(base: dict, inputs: list[dict], density: float) -> dict[str, torch.Tensor]:
    """TIES by hand: keep each task vector's larger `density` share (here: its larger half), elect
    each entry's sign by the sum of what was kept, average the kept entries of that sign."""
    out = {}
    for k, b in base.items():
        deltas = [w[k] - b for w in inputs]
        kept = [d * (d.abs() > 64 / 64) if density < 1 else d for d in deltas]  # the larger half
        total = sum(kept)
        assert (total != 0)[sum(kept_d != 0 for kept_d in kept) > 0].all()  # the construction holds
        elected = torch.where(total > 0, 1.0, -1.0).double()
        agree = [(d != 0) & (d.sign() == elected) for d in kept]
        count = sum(a.double() for a in agree)
        mean = sum(d * a for d, a in zip(kept, agree, strict=True)) / count.clamp(min=1)
        out[k] = b + mean
    return out


def unit(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm()


def multislerp(inputs: list[dict]) -> dict[str, torch.Tensor]:
    """Barycentric interpolation on the sphere, tensor by tensor (equal weights): the unit vectors'
    tangents at their normalized mean, averaged, mapped back by the exponential map; scaled to the
    mean norm."""
    out = {}
    for k in inputs[0]:
        xs = [w[k].flatten() for w in inputs]
        us = [unit(x) for x in xs]
        mean = unit(sum(us) / len(us))
        tangent = sum(u - (u @ mean) * mean for u in us) / len(us)
        angle = tangent.norm()
        point = mean * torch.cos(angle) + tangent * torch.sin(angle) / angle
        out[k] = (point * sum(x.norm() for x in xs) / len(xs)).reshape(inputs[0][k].shape)
    return out


def karcher(inputs: list[dict]) -> dict[str, torch.Tensor]:
    """The Karcher (Riemannian) mean of the unit vectors, by gradient steps on the sphere until the
    mean of the log maps vanishes, scaled to the mean norm."""
    out = {}
    for k in inputs[0]:
        xs = [w[k].flatten() for w in inputs]
        us = [unit(x) for x in xs]
        mean = unit(sum(us))
        for _ in range(200):
            logs = []
            for u in us:
                cos = (u @ mean).clamp(-1, 1)
                theta = torch.arccos(cos)
                logs.append((theta / torch.sin(theta)) * (u - cos * mean) if theta > 1e-12 else 0 * u)
            step = sum(logs) / len(logs)
            if step.norm() < 1e-12:
                break
            mean = unit(torch.cos(step.norm()) * mean + torch.sin(step.norm()) * unit(step))
        out[k] = (mean * sum(x.norm() for x in xs) / len(xs)).reshape(inputs[0][k].shape)
    return out


def assert_equal_within(got: dict, want: dict, atol: float) -> None:
    assert got.keys() == want.keys()
    for k in want:
        torch.testing.assert_close(got[k], want[k], rtol=0, atol=atol, msg=lambda m, k=k: f"{k}: {m}")


def assert_new(got: dict, base: dict, inputs: list[dict]) -> None:
    """The merge is neither the base nor any input, in any tensor."""
    for k in got:
        for name, other in (("the base", base), *((f"input {i}", w) for i, w in enumerate(inputs))):
            assert (got[k] - other[k]).abs().max() > 1 / 128, f"{k} of the merge is {name}"


def test_ties_is_pruning_sign_election_and_the_disjoint_mean(overlapping, tmp_path):
    root, base, inputs = overlapping
    got = merged(root, "ties", tmp_path / "m")
    want = ties(base, inputs, density=0.5)
    assert_equal_within(got, want, ROUNDING)
    assert_new(got, base, inputs)
    # each step matters on these numbers: without pruning, or without the election, it differs
    for variant in (ties(base, inputs, density=1.0), task_arithmetic(base, inputs)):
        assert any((variant[k] - want[k]).abs().max() > 4 * ROUNDING for k in want)


def task_arithmetic(base: dict, inputs: list[dict]) -> dict[str, torch.Tensor]:
    """base + the mean task vector (weights 1.0, `normalize`: the study's parameters; task
    arithmetic prunes nothing, whatever `density` says)."""
    return {k: b + sum(w[k] - b for w in inputs) / len(inputs) for k, b in base.items()}


def test_task_arithmetic_is_the_base_plus_the_mean_task_vector(overlapping, tmp_path):
    root, base, inputs = overlapping
    got = merged(root, "task_arithmetic", tmp_path / "m")
    assert_equal_within(got, task_arithmetic(base, inputs), ROUNDING)
    assert_new(got, base, inputs)


def test_linear_is_the_mean_of_the_models(overlapping, tmp_path):
    root, base, inputs = overlapping
    got = merged(root, "linear", tmp_path / "m")
    assert_equal_within(got, {k: sum(w[k] for w in inputs) / 3 for k in base}, ROUNDING)
    assert_new(got, base, inputs)


def test_breadcrumbs_ties_at_full_density_is_ties_without_pruning(overlapping, tmp_path):
    root, base, inputs = overlapping
    got = merged(root, "breadcrumbs_ties", tmp_path / "m")  # no density: 1.0, so no entry is cut
    assert_equal_within(got, ties(base, inputs, density=1.0), ROUNDING)
    assert_new(got, base, inputs)


@pytest.mark.parametrize("method", ["multislerp", "karcher"])
def test_spherical_means_follow_their_definitions(overlapping, tmp_path, method):
    root, base, inputs = overlapping
    got = merged(root, method, tmp_path / "m")
    want = (multislerp if method == "multislerp" else karcher)(inputs)
    linear = {k: sum(w[k] for w in inputs) / 3 for k in base}
    for k in want:
        scale = want[k].abs().max()
        # float16 arithmetic inside mergekit: agreement to a few parts in a thousand of the tensor's
        # scale, while the Euclidean mean is off by far more
        assert (got[k] - want[k]).abs().max() < 5e-3 * scale, k
        assert (linear[k] - want[k]).abs().max() > 2e-2 * scale, k
        torch.testing.assert_close(got[k].norm(), sum(w[k].norm() for w in inputs) / 3, rtol=2e-3, atol=0)
    assert_new(got, base, inputs)


@pytest.mark.parametrize("method", ["dare_ties", "della"])
def test_random_drops_keep_entries_rescaled_by_their_l1_share(disjoint, tmp_path, method):
    """DARE (keep each entry with probability `density`) and DELLA (probabilities by magnitude rank
    around `density`), each followed by L1 rescaling: each model's kept entries are its task vector
    times one factor per tensor, |task vector|_1 / |kept|_1; a dropped entry is the base's."""
    root, base, inputs = disjoint
    got = merged(root, method, tmp_path / "m")
    kept_total = owned_total = 0
    for k, b in base.items():
        delta = got[k] - b
        for w in inputs:
            tv = w[k] - b
            own = tv != 0
            kept = own & (delta.abs() > 1 / 128)
            assert (delta[own & ~kept] == 0).all(), k  # dropped: exactly the base
            if kept.any():
                factor = tv[own].abs().sum() / tv[kept].abs().sum()
                torch.testing.assert_close(delta[kept], factor * tv[kept], rtol=4e-3, atol=ROUNDING)
            kept_total, owned_total = kept_total + int(kept.sum()), owned_total + int(own.sum())
    # density 0.5 (DELLA: 0.5 +- 0.1 by magnitude rank)
    assert 0.4 < kept_total / owned_total < 0.7, kept_total / owned_total
    assert_new(got, base, inputs)
