"""Merging tiny trained checkpoints with every method through mergekit; the study's merge grid."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from growup.config import Study, resolve_config
from growup.errors import GrowupError
from growup.merge import grid
from growup.merge.run import run_merge
from growup.models.build import base_config, init_model
from growup.models.checkpoint import save_checkpoint
from growup.models.cloning import hyperclone
from growup.study import load_config
from growup.train.loop import train
from helpers import REPO, tiny_raw

LANGS = ("ekk", "fao")


@pytest.fixture(scope="module")
def study() -> Study:
    raw = tiny_raw()
    for lang in LANGS:
        raw["training"]["schedules"][lang] = {"steps": 8, "warmup": 1, "decay_start": 6, "decay_steps": 2}
    raw["training"]["checkpoint_every"] = {"base": 8, "adaptation": 8}
    return Study.from_mapping(raw)


@pytest.fixture(scope="module")
def checkpoints(study, mini_data, tmp_path_factory) -> Path:
    """english-1x (init), english-2x (its clone) and ekk/fao trained for 8 steps in 1x and 2x."""
    root = tmp_path_factory.mktemp("checkpoints")
    base = init_model(base_config(study.model, study.tokenizer.vocab_size), seed=0)
    tok = mini_data / "tokenizer"
    save_checkpoint(base, root / "english-1x" / "final", {"operation": "init"}, tokenizer_src=tok)
    save_checkpoint(
        hyperclone(base, 2), root / "english-2x" / "final", {"operation": "clone"}, tokenizer_src=tok
    )
    for setup, parent in (("1x", "english-1x"), ("2x", "english-2x")):
        for lang in LANGS:
            train(
                study,
                f"{lang}-{setup}",
                root / parent / "final",
                root / f"{lang}-{setup}",
                data_dir=mini_data,
                progress=False,
            )
    return root


def cfg(study, checkpoints, setup, method, subset=LANGS) -> dict:
    methods = {
        **study.raw["merging"]["methods"],
        "della": {"base": True, "model_parameters": {"density": 0.5, "epsilon": 0.1}},
        "karcher": {"base": False},
        "breadcrumbs_ties": {"base": True},
    }
    s = Study.from_mapping({**study.raw, "merging": {**study.raw["merging"], "methods": methods}})
    return grid.merge_config(s, grid.Merge(setup, method, subset), checkpoints)


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(folder / "model.safetensors")


@pytest.mark.parametrize("setup", ["1x", "2x"])
@pytest.mark.parametrize(
    "method",
    ["linear", "multislerp", "task_arithmetic", "ties", "dare_ties", "della", "karcher", "breadcrumbs_ties"],
)
def test_every_method_merges_and_loads(study, checkpoints, tmp_path, setup, method):
    out = run_merge(cfg(study, checkpoints, setup, method), tmp_path / "m", 0, tmp_path / "m.yaml")
    model = AutoModelForCausalLM.from_pretrained(out).eval()
    assert all(not torch.isnan(p).any() for p in model.parameters())
    assert model.config.model_type == ("hyperllama" if setup == "2x" else "llama")
    if setup == "2x":
        assert model.config.lm_head_normalization_factor == 2
    with torch.no_grad():
        assert torch.isfinite(model(torch.tensor([[1, 2, 3, 4]])).logits).all()
    assert (tmp_path / "m.yaml").read_text().startswith("# growup merge config")


def test_linear_of_two_is_the_average(study, checkpoints, tmp_path, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    environment = dict(os.environ)
    out = run_merge(cfg(study, checkpoints, "1x", "linear"), tmp_path / "m")
    assert dict(os.environ) == environment, "a merge leaves the process environment as it found it"
    merged, a, b = (
        weights(out),
        weights(checkpoints / "ekk-1x" / "final"),
        weights(checkpoints / "fao-1x" / "final"),
    )
    assert merged.keys() == a.keys()
    for k in a:
        expected = ((a[k] + b[k]) / 2).to(torch.float16)
        assert merged[k].dtype == torch.float16
        torch.testing.assert_close(merged[k], expected, rtol=0, atol=2e-3)
    assert any(not torch.equal(a[k], b[k]) for k in a), "the two models must differ"


# multislerp is left out: mergekit 0.1.5's multislerp of identical tensors divides by a zero angle (NaN).
@pytest.mark.parametrize("method", ["linear", "task_arithmetic"])
def test_merging_a_model_with_itself_returns_it(study, checkpoints, tmp_path, method):
    import shutil

    # mergekit refuses the same path twice, so the twin is a copy of the same checkpoint
    shutil.copytree(checkpoints / "ekk-2x" / "final", tmp_path / "twin")
    config = cfg(study, checkpoints, "2x", method)
    config["models"][1]["model"] = str(tmp_path / "twin")
    out = run_merge(config, tmp_path / "m")
    merged, source = weights(out), weights(checkpoints / "ekk-2x" / "final")
    for k in source:
        torch.testing.assert_close(merged[k].float(), source[k].to(torch.float16).float(), rtol=0, atol=2e-3)


def test_dare_ties_is_reproducible(study, checkpoints, tmp_path):
    config = cfg(study, checkpoints, "1x", "dare_ties")
    a, b = run_merge(config, tmp_path / "a", 7), run_merge(config, tmp_path / "b", 7)
    c = run_merge(config, tmp_path / "c", 8)
    wa, wb, wc = weights(a), weights(b), weights(c)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert any(not torch.equal(wa[k], wc[k]) for k in wa)


def test_missing_model_path_is_named_and_never_fetched(study, checkpoints, tmp_path):
    config = cfg(study, checkpoints, "1x", "ties", ("ekk", "isl"))
    with pytest.raises(GrowupError, match=r"isl-1x/final.*does not exist"):
        run_merge(config, tmp_path / "m")
    assert not (tmp_path / "m").exists()
    relative = {**cfg(study, checkpoints, "1x", "linear"), "models": [{"model": "ekk-1x", "parameters": {}}]}
    with pytest.raises(GrowupError, match="'ekk-1x' does not exist"):  # never read as a Hub id
        run_merge(relative, tmp_path / "m")


def test_merge_files_hold_checkout_relative_paths_wherever_they_are_built(study, checkpoints, tmp_path):
    """The YAML, mergekit's config copy and its card name the checkpoints relative to the
    checkout, so two checkouts in different folders write the same bytes."""
    outs = []
    for name in ("a", "b"):
        root = tmp_path / name
        shutil.copytree(checkpoints, root / "ckpt")
        config = cfg(study, "ckpt", "2x", "ties")
        outs.append(run_merge(config, root / "m", 0, root / "m.yaml", root=root))
        assert (
            str(root) not in (root / "m.yaml").read_text() + (root / "m" / "mergekit_config.yml").read_text()
        )
        assert "ckpt/ekk-2x/final" in (root / "m" / "mergekit_config.yml").read_text()
    for file in ("mergekit_config.yml", "README.md", "model.safetensors"):
        assert (outs[0] / file).read_bytes() == (outs[1] / file).read_bytes(), file


def test_paper_grid_has_390_merges_with_the_study_parameters():
    paper = load_config(REPO / "config" / "paper.yaml")
    merges = grid.merge_grid(paper)
    assert len(merges) == 390 and len(grid.language_subsets(paper)) == 26
    assert grid.grid_counts(merges) == {"1x": 130, "1x-cloned": 130, "2x": 130}
    assert {m.method for m in merges} == {"linear", "multislerp", "task_arithmetic", "ties", "dare_ties"}
    # the authors' parameters where each method reads them (README "Fidelity")
    parameters = {
        "linear": {"normalize": True},
        "multislerp": {},
        "task_arithmetic": {"normalize": True},
        "ties": {"normalize": True, "int8_mask": True},
        "dare_ties": {"normalize": True, "int8_mask": True},
    }
    for merge in merges:
        config = grid.merge_config(paper, merge, "/ckpt")
        assert config["dtype"] == "float16" and config["parameters"] == parameters[merge.method]
        assert all(m["parameters"]["weight"] == 1.0 for m in config["models"])
        sparse = merge.method in ("ties", "dare_ties")
        assert all(("density" in m["parameters"]) == sparse for m in config["models"])
        assert all(m["parameters"].get("density", 0.5) == 0.5 for m in config["models"])
        task_vectors = merge.method in ("ties", "dare_ties", "task_arithmetic")
        assert ("base_model" in config) == task_vectors
        if task_vectors:
            parent = {"1x": "english-1x", "1x-cloned": "english-1x-cloned", "2x": "english-2x"}[merge.setup]
            assert config["base_model"] == f"/ckpt/{parent}/final"
        assert [Path(m["model"]).parent.name for m in config["models"]] == [
            f"{lang}-{merge.setup}" for lang in merge.subset
        ]


def test_mini_grid_is_what_its_config_says():
    mini = load_config(REPO / "config" / "config.yaml")
    subsets = mini.raw["merging"]["subsets"]
    merges = grid.merge_grid(mini)
    assert len(merges) == len(subsets) * (5 + 3) * 3  # the paper's five methods and growup's three
    assert sorted({m.subset_name for m in merges}) == sorted(subsets)
    assert {"tsv_m", "iso_c", "iso_cts"} <= {m.method for m in merges}


def test_bad_subset_is_named():
    raw = tiny_raw()
    raw["merging"]["subsets"] = ["ekk+xyz"]
    with pytest.raises(GrowupError, match="ekk\\+xyz"):
        grid.merge_grid(Study.from_mapping(raw))


def test_yaml_reruns_with_the_command_in_its_header(study, checkpoints, tmp_path):
    """The written YAML reruns with the command its header prints (`growup merge rerun`, no
    remote code) and reproduces the in-process merge."""
    ours = run_merge(cfg(study, checkpoints, "2x", "dare_ties"), tmp_path / "ours", 0, tmp_path / "m.yaml")
    assert "growup merge rerun THIS_FILE OUT_DIR --random-seed 0" in (tmp_path / "m.yaml").read_text()
    argv = grid.rerun_argv(tmp_path / "m.yaml", tmp_path / "theirs", 0)
    subprocess.run(argv, check=True, capture_output=True, timeout=300)
    a, b = weights(ours), weights(tmp_path / "theirs")
    assert all(torch.equal(a[k], b[k]) for k in a)
    config = json.loads((tmp_path / "theirs" / "config.json").read_text())
    assert config["lm_head_normalization_factor"] == 2


@pytest.mark.parametrize("method", ["tsv_m", "iso_c", "iso_cts"])
def test_growup_methods_merge_hyperllama_and_score_in_lm_eval(study, checkpoints, tmp_path, method):
    """A 2x (HyperLlama) merge with each of growup's methods: the YAML says the method is
    growup's, the merged model loads and lm-eval scores it, and it is none of its inputs."""
    from growup.evaluate.sweep import evaluate_checkpoint
    from growup.study import load_config

    out = run_merge(cfg(study, checkpoints, "2x", method), tmp_path / "m", 0, tmp_path / "m.yaml")
    assert f"it is growup.merge.methods:{method}" in (tmp_path / "m.yaml").read_text()
    assert json.loads((out / "config.json").read_text())["lm_head_normalization_factor"] == 2
    merged = weights(out)
    for run in ("ekk-2x", "fao-2x", "english-2x"):
        source = weights(checkpoints / run / "final")
        assert any(not torch.equal(merged[k], source[k].to(merged[k].dtype)) for k in source), run
    mini = load_config(REPO / "config" / "config.yaml")
    written = evaluate_checkpoint(mini, out, f"merge-2x-{method}-ekk+fao", "final", tmp_path / "evals",
                                  ["multiblimp_fao"], limit=20)  # fmt: skip
    results = json.loads((written / "multiblimp_fao.json").read_text())["results"]["multiblimp_fao"]
    assert 0 <= results["acc,none"] <= 1 and results["acc_norm,none"] >= 0
    assert len((written / "multiblimp_fao.samples.jsonl").read_text().splitlines()) == 20


def test_a_tsv_m_merge_reruns_byte_for_byte(study, checkpoints, tmp_path):
    """`growup merge rerun` of a TSV-M YAML (its SVDs in float32) gives the weights of the
    in-process merge byte for byte, as does a second in-process merge in another folder."""
    config = cfg(study, checkpoints, "2x", "tsv_m")
    ours = run_merge(config, tmp_path / "a" / "m", 0, tmp_path / "a" / "m.yaml")
    again = run_merge(config, tmp_path / "b" / "m", 0)
    argv = grid.rerun_argv(tmp_path / "a" / "m.yaml", tmp_path / "rerun", None)
    subprocess.run(argv, check=True, capture_output=True, timeout=300)
    digest = lambda folder: hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()  # noqa: E731
    assert digest(ours) == digest(again) == digest(tmp_path / "rerun")  # digests: a diff of MBs is slow


def test_reference_configs_are_merged_as_written(tmp_path):
    """merging.reference_configs: the authors' file decides fields and order; ids map to runs."""
    config = resolve_config(REPO / "config" / "released.yaml")
    hub_ids = config["released"]["models"]
    authors = {
        "base_model": hub_ids["english-1x-cloned"],
        "dtype": "float16",
        "merge_method": "ties",
        "models": [
            {"model": hub_ids["fao-2x"], "parameters": {"density": 0.5, "weight": 1.0}},
            {"model": hub_ids["ekk-2x"], "parameters": {"density": 0.5, "weight": 1.0}},
        ],
        "parameters": {"int8_mask": True, "normalize": True},
    }
    (tmp_path / "ties_2x_ekk_fao.yaml").write_text(yaml.safe_dump(authors))
    config["merging"] = {**config["merging"], "reference_configs": str(tmp_path), "setups": ["2x"],
                         "subsets": ["ekk+fao"], "methods": {"ties": {"base": True}}}  # fmt: skip
    study = Study.from_mapping(config)
    (merge,) = grid.merge_grid(study)
    ours = grid.merge_config(study, merge, "/ckpt")
    assert [m["model"] for m in ours["models"]] == ["/ckpt/fao-2x/final", "/ckpt/ekk-2x/final"]
    assert ours["base_model"] == "/ckpt/english-1x-cloned/final"
    assert {k: v for k, v in ours.items() if k not in ("models", "base_model")} == {
        k: v for k, v in authors.items() if k not in ("models", "base_model")
    }
    assert grid.merge_runs(study, merge) == ["fao-2x", "ekk-2x", "english-1x-cloned"]
    (tmp_path / "ties_2x_ekk_fao.yaml").write_text(yaml.safe_dump({**authors, "base_model": "someone/else"}))
    with pytest.raises(GrowupError, match="released.models"):
        grid.merge_config(study, merge, "/ckpt")
    (tmp_path / "ties_2x_ekk_fao.yaml").unlink()
    with pytest.raises(GrowupError, match="merging.reference_configs"):
        grid.merge_config(study, merge, "/ckpt")
