"""The released study: published checkpoints (stand-ins written locally in the authors' format:
HyperLlama config keys, tied head, normalisation factor) fetched through the Hub root, then
evaluated, merged, plotted and checked, with no data preparation and no training."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from safetensors.torch import save_file

from growup.config import Study
from growup.errors import GrowupError
from growup.fetch import run as released
from growup.models.build import init_model, study_configs
from growup.models.checkpoint import copy_tokenizer, read_card
from growup.models.cloning import hyperclone
from growup.study import (
    ENGLISH_CLONE,
    fetched_runs,
    load_config,
    released_runs,
    run_model,
    run_source,
    runs_to_train,
)
from helpers import copy_repo, linked_hub, planned, randomize, released_config_dict, run_tool

ORG = "growup-standin"
NO_TRAINING = {"train", "init_seed", "tokenizer", "pack", "fetch_english", "fetch_code", "fetch_language"}
# the mini study's shapes and schedules, one merge subset (15 merges), few pairs: minutes, not hours
TEST_CONFIG = {
    "extends": "config.yaml",
    "study": "released",
    "evaluation": {"limit": 20},
    "merging": {"subsets": ["ekk+fao+isl+fas+swe"]},
}


def write_standin(folder: Path, model, factor: int, tokenizer: Path) -> None:
    """A checkpoint as the authors published it: safetensors without lm_head, their config.json."""
    folder.mkdir(parents=True)
    state = {k: v.contiguous() for k, v in model.state_dict().items() if k != "lm_head.weight"}
    save_file(state, folder / "model.safetensors", metadata={"format": "pt"})
    (folder / "config.json").write_text(json.dumps(released_config_dict(model.config, factor)))
    (folder / "README.md").write_text("---\nlicense: apache-2.0\n---\n# A published model card\n")
    copy_tokenizer(tokenizer, folder)


def standin_hub(root: Path, mirror: Path, study, tokenizer: Path) -> dict[str, str]:
    """A Hub root holding the mirror's datasets and a stand-in for every released model."""
    linked_hub(mirror, root)
    configs, k = study_configs(study), study.model.clone_factor
    models = {}
    for seed, run in enumerate(released_runs(study)):
        # every gain and weight its own (as trained models have): identical norm gains would give
        # zero task vectors, which some merge methods cannot interpolate (growup refuses the NaNs)
        base = randomize(init_model(configs["1x"], seed), seed)
        clone = run == ENGLISH_CLONE or run_model(study, run) != "1x"
        write_standin(root / ORG / run, hyperclone(base, k) if clone else base, k if clone else 1, tokenizer)
        models[run] = f"{ORG}/{run}"
    return models


@pytest.fixture(scope="module")
def released_repo(hub_root, mini_data, tmp_path_factory) -> tuple[Path, dict[str, str]]:
    if hub_root is None:
        pytest.skip("the released study test places stand-in models beside a local Hub mirror")
    work = tmp_path_factory.mktemp("released")
    repo = copy_repo(work / "repo")
    study = load_config(repo / "config" / "config.yaml")
    hub = work / "hub"
    models = standin_hub(hub, Path(hub_root), study, mini_data / "tokenizer")
    config = {**TEST_CONFIG, "released": {"models": models}}
    (repo / "config" / "released-test.yaml").write_text(yaml.safe_dump(config))
    return repo, {"GROWUP_HUB_ROOT": str(hub)}


@pytest.mark.slow
def test_released_study_fetches_instead_of_training_and_yields_the_claims(released_repo):
    repo, env = released_repo
    args = ("--configfile", "config/released-test.yaml")
    plan = planned(run_tool(repo, "snakemake", "-n", *args, env=env))
    assert plan["fetch_checkpoint"] == 21 and not NO_TRAINING & set(plan), plan
    run_tool(repo, "snakemake", "--cores", "2", *args, env=env)
    claims = (repo / "results" / "claims.md").read_text()
    verdicts = re.findall(r"^## \d[ab]?\. .*: \*\*(holds|does not hold|inconclusive)\*\*$", claims, re.M)
    assert len(verdicts) == 7  # claims 1a to 5
    study = load_config(repo / "config" / "released-test.yaml")
    card = read_card(repo / "checkpoints" / "isl-2x" / "final")
    steps = study.training.schedules["isl"].steps
    assert card["tokens"] == steps * study.training.tokens_per_step and card["hub_id"] == f"{ORG}/isl-2x"
    assert (repo / "checkpoints" / "isl-2x" / f"step-{steps}").is_dir()
    assert not (repo / "data").exists()
    assert (repo / "results" / "figures" / "merge_heatmaps.png").stat().st_size > 1000


def test_released_config_fetches_every_run_and_a_run_it_leaves_out_is_trained():
    study = load_config(Path(__file__).resolve().parents[1] / "config" / "released.yaml")
    assert fetched_runs(study) == released_runs(study) and len(fetched_runs(study)) == 21
    assert run_source(study, "isl-2x").location == "liu-nlp/HyperLlama-572M-icelandic-2x"
    assert runs_to_train(study) == []
    models = dict(study.raw["released"]["models"])
    without = {**study.raw, "released": {"models": {k: v for k, v in models.items() if k != "fao-2x"}}}
    assert runs_to_train(Study.from_mapping(without)) == ["fao-2x"]  # from the fetched english-2x
    del models["fao-2x"], models["english-1x"]
    without = {**study.raw, "released": {"models": models}}
    # english-1x trains from the seed; the fetched clone stays fetched; fao-2x from fetched english-2x
    assert runs_to_train(Study.from_mapping(without)) == ["seed", "english-1x", "fao-2x"]


def test_planned_lineage_chains_parent_tokens_through_the_clone():
    study = load_config(Path(__file__).resolve().parents[1] / "config" / "released.yaml")
    per_step = study.training.tokens_per_step
    seed = study.training.schedules["seed"].steps * per_step
    english = study.training.schedules["english"].steps * per_step
    assert released.planned_run(study, "english-1x").parent_tokens == seed
    assert released.planned_run(study, "english-2x").parent_tokens == seed  # from the cloned seed
    assert released.planned_run(study, "english-1x-cloned").parent_tokens == seed + english
    isl = released.planned_run(study, "isl-1x-cloned")
    assert (
        isl.parent_tokens == seed + english and isl.tokens == study.training.schedules["isl"].steps * per_step
    )


def test_fetch_rejects_a_checkpoint_of_the_wrong_shape(hub_root, mini_data, tmp_path, monkeypatch):
    study = load_config(Path(__file__).resolve().parents[1] / "config" / "config.yaml")
    configs = study_configs(study)
    write_standin(tmp_path / "hub" / ORG / "isl-2x", init_model(configs["1x"], 0), 1, mini_data / "tokenizer")
    monkeypatch.setenv("GROWUP_HUB_ROOT", str(tmp_path / "hub"))
    raw = {**study.raw, "study": "released"}
    raw["released"] = {"models": {r: f"{ORG}/{r}" for r in released_runs(study)}}
    with pytest.raises(GrowupError) as err:
        released.fetch(Study.from_mapping(raw), "isl-2x", tmp_path / "out")
    (line,) = str(err.value).splitlines()  # one line naming both shapes
    assert re.search(r"has shape vocab 2048, hidden 96, .* make it vocab 2048, hidden 192, ", line), line
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


# each field a fetched checkpoint is checked for, a wrong value of it, and its phrase in the shape
WRONG_FIELDS = {
    "vocab_size": (lambda v: v + 1, "vocab"),
    "intermediate_size": (lambda v: v * 2, "ffn"),
    "num_hidden_layers": (lambda v: v + 1, "layers"),
    "num_attention_heads": (lambda v: v * 2, "heads"),
    "num_key_value_heads": (lambda v: v // 2, "heads"),
    "head_dim": (lambda v: v * 2, "heads"),
    "tie_word_embeddings": (lambda v: not v, "tied head"),
    "lm_head_normalization_factor": (lambda v: 1, "head factor"),
}


@pytest.mark.parametrize("field", sorted(WRONG_FIELDS))
def test_fetch_refuses_each_wrong_field_in_one_line_naming_it(field, tmp_path, monkeypatch):
    """A stand-in isl-2x config (the clone's shape, factor k) is accepted as it is and refused with
    any one field changed: one line whose two shapes differ in that field's phrase only (a wrong
    head factor would scale every logit)."""
    study = load_config(Path(__file__).resolve().parents[1] / "config" / "config.yaml")
    want = study_configs(study)[run_model(study, "isl-2x")]
    good = released_config_dict(want, study.model.clone_factor)
    folder = tmp_path / "hub" / ORG / "isl-2x"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(good))
    released.check_architecture(study, "isl-2x", folder, f"{ORG}/isl-2x")  # the right shape passes
    change, phrase = WRONG_FIELDS[field]
    bad = {**good, field: change(good[field])}
    assert bad[field] != good[field]
    (folder / "config.json").write_text(json.dumps(bad))
    monkeypatch.setenv("GROWUP_HUB_ROOT", str(tmp_path / "hub"))
    raw = {**study.raw, "study": "released", "released": {"models": {"isl-2x": f"{ORG}/isl-2x"}}}
    with pytest.raises(GrowupError) as err:
        released.fetch(Study.from_mapping(raw), "isl-2x", tmp_path / "out")
    (line,) = str(err.value).splitlines()
    shapes = r".*'isl-2x' has shape (.+); config keys .* make it (.+) \(`growup model shape .*"
    found = re.fullmatch(shapes, line)
    assert found, line
    got, wanted = (found[i].split(", ") for i in (1, 2))
    assert wanted == released.shape(want).split(", ")
    differ = [(g, w) for g, w in zip(got, wanted, strict=True) if g != w]
    assert len(differ) == 1 and differ[0][1].startswith(phrase), (field, differ)
    assert field != "tie_word_embeddings" or differ[0] == ("untied head", "tied head")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
