"""Fidelity: the paper and released configs against the authors' own files.

The authors' repository (liu-nlp/multilingual-scaling: 21 nanotron training configs, 390 mergekit
configs) is read from ../shared/reference/liu-nlp-multilingual-scaling next to this repository.
Every setting of every training config is compared with what growup resolves for that run, and
every merge file field by field with the merge growup runs. What growup does differently on
purpose is in DEPARTURES below (also printed in README "Fidelity"); anything else must match.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from growup import study as study_grid
from growup.config import Study, resolve_config
from growup.data.prepare import budget_table
from growup.merge import grid
from growup.mergekit_registry import GLOBAL, MODEL, method_table
from growup.models.build import study_configs
from growup.study import load_config
from growup.train import runs
from helpers import REPO, skip_or_fail

REFERENCE = REPO.parent / "shared" / "reference" / "liu-nlp-multilingual-scaling"

# Deliberate departures from the authors' files (key: what; value: why). README "Fidelity" prints
# the same list. A departure is asserted for what it is below, never by loosening a comparison.
DEPARTURES = {
    "micro_batch": (
        "growup uses one micro batch (8) for both sizes; the authors used 4 for 572M with twice the "
        "gradient accumulation: the global batch (5,120 sequences) and so the maths are the same"
    ),
    "stage_boundaries": (
        "growup reads a run's stages as one stream, so a stage may start inside a step; nanotron pads "
        "each stage to whole global batches and starts the next at start_training_step (at most one "
        "step of difference per stage, same total steps)"
    ),
    "partial_replay": (
        "English and code replay are one packed dataset in growup, two nanosets in the authors' "
        "configs: Estonian's partial 5th stage reads 63,166 replay samples as theirs does (56,667 "
        "English + 6,499 code), but drawn from the joint set, so its English/code split may differ"
    ),
    "seed_run_english": (
        "the seed run's 80% English split is one packed dataset in growup, two nanosets (train1, "
        "train2) in the authors' config"
    ),
    "multilingual_mixing": (
        "the authors tokenized one multilingual dataset (all languages' documents, epochs and replay "
        "shuffled together, then packed: 112,332,045 samples); growup mixes the monolingual runs' "
        "packed sequences (112,331,612 samples): the same documents, cut at other sequence boundaries"
    ),
    "merge_base_2x": (
        "the paper config merges 2x with base english-2x, the run the 2x models start from; 76 of "
        "the authors' 78 base-using 2x files name liu-nlp/HyperLlama-572M-english-1x-cloned, their "
        "folder name for that same trained run (their 2x configs resume from it at step 3,572). The "
        "released study merges their files as they stand"
    ),
    "merge_order": (
        "generated configs list models in config language order; 185 of the authors' files list "
        "them in another order. The released study takes the order from their files"
    ),
    "inert_parameters": (
        "generated configs give each method only the parameters it reads: the authors' files also "
        "give linear int8_mask, multislerp normalize and int8_mask, task_arithmetic density and "
        "int8_mask, which mergekit drops or never reads (README 'Fidelity' lists them), so the YAML "
        "bytes differ and the merged weights do not"
    ),
}
# The authors' parameters without effect, as growup.mergekit_registry derives them from mergekit
# (method, parameter, where given): DEPARTURES["inert_parameters"], README "Fidelity".
INERT = {
    ("linear", "int8_mask", "global"),
    ("multislerp", "normalize", "global"),
    ("multislerp", "int8_mask", "global"),
    ("task_arithmetic", "density", "model"),
    ("task_arithmetic", "int8_mask", "global"),
}

LANGUAGES = {"estonian": "ekk", "faroese": "fao", "icelandic": "isl", "persian": "fas", "swedish": "swe"}
# The authors' checkpoint folders -> growup's runs. Their folder of the trained 572M English run is
# HyperLlama-572M-english-1x-cloned (the 2x configs resume from it at step 3,572):
# see DEPARTURES["merge_base_2x"].
FOLDER_RUN = {
    "HyperLlama-180M-english-1x-base": "seed",
    "HyperLlama-180M-english-1x": "english-1x",
    "HyperLlama-572M-english-1x-cloned": "english-2x",
}
# The authors' nanoset folders -> growup's packed datasets.
NANOSET = {
    "fineweb_edu_nanoset_python": "code",
    "fineweb_edu_nanoset_train1": "english-80",
    "fineweb_edu_nanoset_train2": "english-80",
    "fineweb_edu_nanoset_test": "english-20",
}


@pytest.fixture(scope="module")
def reference() -> Path:
    """The authors' files; skip without them (fail under CI, where they must be present)."""
    if (REFERENCE / "training_configs").is_dir() and (REFERENCE / "mergekit_configs").is_dir():
        return REFERENCE
    skip_or_fail(f"the authors' files are not at {REFERENCE} (a copy of liu-nlp/multilingual-scaling)")


@pytest.fixture(scope="module")
def paper() -> Study:
    return load_config(REPO / "config" / "paper.yaml")


def run_name(stem: str) -> str:
    """growup's run for an authors' training config file name."""
    if stem in FOLDER_RUN:
        return FOLDER_RUN[stem]
    match = re.fullmatch(r"HyperLlama-\d+M-([a-z]+)-(1x-cloned|1x|2x)", stem)
    assert match, stem
    lang, setup = match.groups()
    if lang == "english":
        return f"english-{setup}"
    return f"{LANGUAGES.get(lang, lang)}-{setup}"


def training_configs(reference: Path) -> dict[str, dict[str, Any]]:
    files = sorted((reference / "training_configs").glob("*/*.yaml"))
    assert len(files) == 21, [f.name for f in files]
    return {run_name(f.stem): yaml.safe_load(f.read_text()) for f in files}


def start_run(authors: dict[str, Any]) -> tuple[str, int | None]:
    """The growup checkpoint an authors' run starts from (resume path, or init path + cloning),
    and the step of theirs it names."""
    ckpt, init = authors["checkpoints"], authors["model"]["init_method"]
    path = ckpt.get("resume_checkpoint_path") or init.get("path")
    if path is None:
        return "init/final", None
    folder, step = Path(path).parts[-2:]
    parent = run_name(folder)
    cloned = init.get("embedding_dimension_cloning_factor")
    return (f"{parent}-cloned/final" if cloned else f"{parent}/final"), int(step)


def test_reference_holds_every_run(reference, paper):
    assert sorted(training_configs(reference)) == sorted(study_grid.trained_runs(paper))


def test_general_model_optimizer_and_schedule(reference, paper):
    t, configs = paper.training, study_configs(paper)
    for run, authors in training_configs(reference).items():
        model, opt = authors["model"], authors["optimizer"]
        mc, sched = model["model_config"], opt["learning_rate_scheduler"]
        ours = configs[study_grid.run_model(paper, run)]
        assert authors["general"]["seed"] == paper.seed, run
        for key in ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                    "num_key_value_heads", "hidden_act", "rms_norm_eps", "max_position_embeddings",
                    "initializer_range", "tie_word_embeddings", "vocab_size"):  # fmt: skip
            assert getattr(ours, key) == mc[key], (run, key)
        assert ours.rope_parameters["rope_theta"] == mc["rope_theta"] and mc["rope_scaling"] is None
        assert getattr(ours, "lm_head_normalization_factor", None) == mc.get("lm_head_normalization_factor")
        assert model["dtype"] == "bfloat16" and t.mixed_precision == "bf16"
        # nanotron's RandomInit: std, scaled by sqrt(2 layers) on o_proj/down_proj by default (NUM_LAYERS)
        if "std" in model["init_method"]:
            assert model["init_method"]["std"] == paper.model.initializer_range
            assert model["init_method"].get("scaling_method", "NUM_LAYERS") == "NUM_LAYERS"
            assert paper.model.init_scaling == "num_layers"
        assert authors["tokenizer"]["tokenizer_name_or_path"] == paper.tokenizer.hub_id
        assert opt["learning_rate_scheduler"]["learning_rate"] == t.peak_lr
        assert sched["min_decay_lr"] == t.min_lr
        assert sched["lr_warmup_style"] == sched["lr_decay_style"] == "linear"  # growup's wsd_lr
        f = opt["optimizer_factory"]
        assert (
            f["name"] == "adamW" and (f["adam_beta1"], f["adam_beta2"]) == t.betas and f["adam_eps"] == t.eps
        )
        assert opt["weight_decay"] == t.weight_decay and opt["clip_grad"] == t.grad_clip
        ours_sched = runs.run_schedule(paper, run)
        assert (ours_sched.steps, ours_sched.warmup, ours_sched.decay_start, ours_sched.decay_steps) == (
            authors["tokens"]["train_steps"],
            sched["lr_warmup_steps"],
            sched["lr_decay_starting_step"],
            sched["lr_decay_steps"],
        ), run
        tok = authors["tokens"]
        assert tok["sequence_length"] == t.sequence_length
        dp = authors["parallelism"]["dp"]
        assert dp * tok["batch_accumulation_per_replica"] * tok["micro_batch_size"] == t.global_batch
        assert tok["micro_batch_size"] in (t.micro_batch, t.micro_batch // 2)  # DEPARTURES["micro_batch"]
        assert dp == runs.run_gpus(paper, run)
        assert authors["checkpoints"]["checkpoint_interval"] == runs.checkpoint_every(paper, run), run
        assert not authors["checkpoints"].get("load_optimizer") and not authors["checkpoints"].get(
            "load_lr_scheduler"
        )  # optimizer and schedule start afresh, as growup's runs do


def test_lineage(reference, paper):
    """Each run starts where the authors' did (the checkpoint and its step = the parent's length)."""
    for run, authors in training_configs(reference).items():
        checkpoint, step = start_run(authors)
        assert study_grid.start_checkpoint(paper, run) == checkpoint, run
        if step is None:
            continue
        parent = checkpoint.split("/")[0].removesuffix("-cloned")
        assert runs.run_schedule(paper, parent).steps == step, run


def test_document_boundaries_and_separator(paper):
    """Positions over the whole row, no per-document mask (STUDY.md), BOS before every document
    (datatrove's DocumentTokenizer, README "Fidelity"), and the scoring prefix is that token."""
    assert paper.training.reset_positions is False and paper.training.document_attention_mask is False
    assert paper.raw["data"]["packing"]["separator"] == "bos" == paper.evaluation.prefix


@pytest.mark.parametrize("name", ["config.yaml", "paper.yaml", "released.yaml"])
def test_scoring_prefix_is_the_document_separator(name):
    config = resolve_config(REPO / "config" / name)
    assert config["evaluation"]["prefix"] == config["data"]["packing"].get("separator", "eos")


def resolved_specs(paper: Study, tmp_path: Path) -> dict[str, runs.RunSpec]:
    """Every run's data schedule as growup resolves it (fixed schedules need no data)."""
    table = budget_table(paper, {lang: 10**9 for lang in paper.data.language_codes})
    (tmp_path / "unimax.json").write_text(json.dumps(table))
    return {run: runs.run_spec(paper, run, tmp_path) for run in study_grid.trained_runs(paper)}


def portion_samples(portion: runs.Portion, fixed: dict[str, Any]) -> int:
    """Samples a portion reads, by the authors' sample counts of its dataset."""
    lang = portion.dataset.removeprefix("replay-")
    samples = fixed[lang]["samples"]
    size = samples[0] if portion.dataset == lang else samples[1] + samples[2]
    return round(portion.fraction * size)


def test_data_stages(reference, paper, tmp_path):
    specs, fixed = resolved_specs(paper, tmp_path), paper.raw["data"]["fixed_schedule"]
    batch = paper.training.global_batch
    configs = training_configs(reference)
    for run, authors in configs.items():
        stages, spec = authors["data_stages"], specs[run]
        assert [s["data"]["seed"] for s in stages] == [p.seed for p in spec.phases], run
        # the authors' stage starts: whole global batches per stage (DEPARTURES["stage_boundaries"])
        sizes = [sum(s["data"]["dataset"]["dataset_num_samples"]) for s in stages]
        starts = [1 + sum(math.ceil(n / batch) for n in sizes[:i]) for i in range(len(stages))]
        assert [s["start_training_step"] for s in stages] == starts, run
        assert sum(math.ceil(n / batch) for n in sizes) == spec.schedule.steps, run
        kind, lang, _ = study_grid.parse_run(paper, run)
        if kind in ("seed", "english"):
            for stage, phase in zip(stages, spec.phases, strict=True):
                names = {NANOSET[Path(f).name] for f in stage["data"]["dataset"]["dataset_folder"]}
                assert names == {p.dataset for p in phase.portions}, run  # DEPARTURES["seed_run_english"]
            continue
        if kind == "multilingual":  # DEPARTURES["multilingual_mixing"]: one pre-mixed dataset
            (stage,) = stages
            assert spec.phases[0].seed == stage["data"]["seed"] == paper.seed
            ours = sum(portion_samples(p, fixed) for p in spec.phases[0].portions)
            monolingual = sum(  # every stage of the five 1x language runs
                sum(st["data"]["dataset"]["dataset_num_samples"])
                for r, c in configs.items()
                if r.endswith("-1x") and study_grid.parse_run(paper, r)[0] == "language"
                for st in c["data_stages"]
            )
            assert ours == monolingual
            assert abs(ours - stage["data"]["dataset"]["dataset_num_samples"][0]) / ours < 1e-5
            continue
        entry = fixed[lang]
        for i, (stage, phase) in enumerate(zip(stages, spec.phases, strict=True)):
            counts = stage["data"]["dataset"]["dataset_num_samples"]
            assert stage["data"]["dataset"]["dataset_weights"] == [
                float(n) for n in counts
            ]  # by sample counts
            language, replay = phase.portions
            assert (language.dataset, replay.dataset) == (lang, f"replay-{lang}")
            assert round(language.fraction * entry["samples"][0]) == counts[0], (run, i)
            partial = i == entry["epochs"]
            assert counts == (entry["partial"] if partial else entry["samples"]), (run, i)
            replay_size = sum(entry["samples"][1:])  # English + code: DEPARTURES["partial_replay"]
            assert round(replay.fraction * replay_size) == sum(counts[1:]), (run, i)


def test_faroese_checkpoints_once_per_epoch(paper):
    for setup in study_grid.SETUPS:
        assert runs.checkpoint_every(paper, f"fao-{setup}") == 24
        assert runs.checkpoint_every(paper, f"isl-{setup}") == 250
    assert runs.checkpoint_every(paper, "multilingual-2x") == 250


# ---- merges --------------------------------------------------------------------------------------


def merge_key(path: Path) -> tuple[str, str, tuple[str, ...]]:
    match = re.fullmatch(
        r"(linear|multislerp|task_arithmetic|ties|dare_ties)_(1x_cloned|1x|2x)_([a-z_]+)", path.stem
    )
    assert match, path.name
    method, setup, langs = match.groups()
    return method, setup.replace("_", "-"), tuple(langs.split("_"))


@pytest.fixture(scope="module")
def released(reference) -> Study:
    config = resolve_config(REPO / "config" / "released.yaml")
    assert (REPO / config["merging"]["reference_configs"]).resolve() == (
        reference / "mergekit_configs"
    ).resolve()
    config["merging"]["reference_configs"] = str(reference / "mergekit_configs")
    return Study.from_mapping(config)


def authors_merges(reference: Path) -> dict[tuple, dict[str, Any]]:
    files = sorted((reference / "mergekit_configs").glob("*.yaml"))
    assert len(files) == 390
    return {merge_key(f): yaml.safe_load(f.read_text()) for f in files}


def hub_id(study: Study):
    models = study.raw["released"]["models"]
    return lambda run, _root: models[run]


def test_released_study_merges_exactly_the_authors_files(reference, released):
    """All 390 merges, field by field, models in order, Hub ids as the authors wrote them."""
    theirs = authors_merges(reference)
    merges = grid.merge_grid(released)
    assert sorted((m.method, m.setup, tuple(sorted(m.subset))) for m in merges) == sorted(theirs)
    for merge in merges:
        ours = grid.merge_config(released, merge, "checkpoints", reference=hub_id(released))
        want = theirs[(merge.method, merge.setup, tuple(sorted(merge.subset)))]
        for field in ("merge_method", "parameters", "base_model", "dtype", "models"):
            assert ours.get(field) == want.get(field), (merge.name, field)
        assert set(ours) == set(want), merge.name


def test_released_merge_inputs_include_every_base(reference, released):
    runs_2x = {r for m in grid.merge_grid(released) if m.setup == "2x" for r in grid.merge_runs(released, m)}
    assert {"english-1x-cloned", "english-2x"} <= runs_2x


def effective(config: dict[str, Any]) -> tuple[dict, list[dict], set]:
    """A merge config's parameters that its method reads (the merge's, each model's), and the
    (method, parameter, where) it gives without effect (growup.mergekit_registry)."""
    reads, method = method_table()[config["merge_method"]], config["merge_method"]
    merge = {p: v for p, v in config["parameters"].items() if reads.no_effect(p, GLOBAL) is None}
    per_model = [
        {p: v for p, v in m["parameters"].items() if reads.no_effect(p, MODEL) is None}
        for m in config["models"]
    ]
    inert = {(method, p, GLOBAL) for p in config["parameters"] if p not in merge}
    inert |= {
        (method, p, MODEL)
        for m, kept in zip(config["models"], per_model, strict=True)
        for p in m["parameters"]
        if p not in kept
    }
    return merge, per_model, inert


def test_generated_grid_departs_only_as_listed(reference, paper):
    """The paper config's own merges against the authors' files: method, dtype, models and every
    parameter the method reads agree in every file; order, the 2x base and the parameters without
    effect depart as DEPARTURES say, no more."""
    models = {**load_config(REPO / "config" / "released.yaml").raw["released"]["models"]}
    theirs = authors_merges(reference)
    order_differs, base_differs, inert = 0, [], set()
    for merge in grid.merge_grid(paper):
        ours = grid.merge_config(paper, merge, "checkpoints", reference=lambda run, _r: models[run])
        want = theirs[(merge.method, merge.setup, tuple(sorted(merge.subset)))]
        assert (ours["merge_method"], ours["dtype"]) == (want["merge_method"], want["dtype"])
        their_merge, their_models, their_inert = effective(want)
        assert (
            ours["parameters"] == their_merge and effective(ours)[2] == set()
        )  # DEPARTURES["inert_parameters"]
        inert |= their_inert
        assert sorted(m["model"] for m in ours["models"]) == sorted(m["model"] for m in want["models"])
        assert all(m["parameters"] == their_models[0] for m in ours["models"])
        assert all(kept == their_models[0] for kept in their_models)
        order_differs += [m["model"] for m in ours["models"]] != [m["model"] for m in want["models"]]
        if ours.get("base_model") != want.get("base_model"):
            base_differs.append((merge.setup, want.get("base_model")))
    assert order_differs == 185  # DEPARTURES["merge_order"]
    assert base_differs == [("2x", models["english-1x-cloned"])] * 76  # DEPARTURES["merge_base_2x"]
    assert inert == INERT  # DEPARTURES["inert_parameters"]


def test_released_config_warns_of_each_parameter_without_effect(reference, caplog, monkeypatch):
    """config/released.yaml loads, with one warning per method and parameter of the authors' that
    has no effect in mergekit; README "Fidelity" lists each."""
    monkeypatch.chdir(REPO)  # merging.reference_configs is relative to the working directory
    with caplog.at_level("WARNING", logger="growup.checks"):
        load_config(REPO / "config" / "released.yaml")
    lines = [r.getMessage() for r in caplog.records if "merging.reference_configs" in r.getMessage()]
    assert len(lines) == len(INERT) and all("78 file(s)" in line for line in lines), lines
    readme = (REPO / "README.md").read_text(encoding="utf-8").split("## Fidelity", 1)[1].split("\n## ", 1)[0]
    for method, parameter, where in INERT:
        where_given = "per model" if where == MODEL else "for the merge"
        assert any(f"give {method} {parameter!r} {where_given}" in line for line in lines), (
            method,
            parameter,
        )
        assert f"`{method}` `{parameter}`" in readme, (method, parameter)


def test_other_task_vector_base_runs_from_config(paper):
    """The alternative 1x-cloned base (the trained 572M English run) is a config value."""
    raw = dict(paper.raw)
    raw["merging"] = {**raw["merging"], "base": {**raw["merging"]["base"], "1x-cloned": "english-2x"}}
    other = Study.from_mapping(raw)
    merge = next(m for m in grid.merge_grid(other) if m.setup == "1x-cloned" and m.method == "ties")
    assert grid.merge_runs(other, merge)[-1] == "english-2x"


def test_readme_prints_every_departure():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Fidelity", 1)[1].split("\n## ", 1)[0]
    for key in DEPARTURES:
        assert f"`{key}`" in section, key


def test_init_scales_residual_outputs_by_depth():
    """model.init_scaling num_layers: nanotron's std / sqrt(2 layers) on o_proj and down_proj."""
    from growup.errors import GrowupError
    from growup.models.build import base_config, init_model, output_init_std

    mini = load_config(REPO / "config" / "config.yaml")
    config = base_config(mini.model, 512)
    std, layers = mini.model.initializer_range, mini.model.num_hidden_layers
    scaled, plain = init_model(config, 0, "num_layers"), init_model(config, 0, "none")
    assert output_init_std(1 / 24, 30) == pytest.approx(0.00538, abs=1e-5)  # STUDY.md
    for layer in scaled.model.layers:
        for weight in (layer.self_attn.o_proj.weight, layer.mlp.down_proj.weight):
            assert weight.std().item() == pytest.approx(std / math.sqrt(2 * layers), rel=0.05)
        assert layer.self_attn.q_proj.weight.std().item() == pytest.approx(std, rel=0.05)
    assert plain.model.layers[0].mlp.down_proj.weight.std().item() == pytest.approx(std, rel=0.05)
    again = init_model(config, 0, "num_layers")
    assert all((a == b).all() for a, b in zip(scaled.parameters(), again.parameters(), strict=True))
    with pytest.raises(GrowupError, match="model.init_scaling"):
        init_model(config, 0, "depth")


def test_training_with_the_authors_document_boundaries(mini_data, tmp_path):
    """A few real steps with positions over the whole row and no per-document mask (the paper's
    setting) train, and differ from growup's per-document default."""
    from growup.models.build import base_config, init_model
    from growup.models.checkpoint import save_checkpoint
    from growup.train.loop import train
    from helpers import tiny_raw

    losses = {}
    for reset in (False, True):
        raw = tiny_raw(reset_positions=reset, document_attention_mask=reset)
        raw["training"]["schedules"]["english"] = dict(steps=3, warmup=1, decay_start=2, decay_steps=1)
        study = Study.from_mapping(raw)
        init, out = tmp_path / f"init-{reset}", tmp_path / f"run-{reset}"
        model = init_model(base_config(study.model, 2048), 0, "num_layers")
        card = {"operation": "init", "tokens": 0}
        save_checkpoint(model, init, card, tokenizer_src=mini_data / "tokenizer")
        train(study, "english-1x", init, out, data_dir=mini_data, progress=False)
        lines = (out / "metrics.jsonl").read_text().splitlines()
        losses[reset] = [json.loads(line)["loss"] for line in lines]
    assert len(losses[False]) == 3 and all(math.isfinite(x) for x in losses[False])
    assert losses[False] != losses[True]  # rows 8-12 of the stream hold document starts


def test_merge_base_ablation_from_config(paper):
    """Method entries with `method`, `setups` and `base_runs` add a merge-base ablation: the
    task-vector methods of 1x-cloned once more on the trained 572M English run."""
    raw = dict(paper.raw)
    methods = dict(raw["merging"]["methods"])
    for name in ("task_arithmetic", "ties", "dare_ties"):
        methods[f"{name}-trained_base"] = {**methods[name], "method": name, "setups": ["1x-cloned"],
                                           "base_runs": {"1x-cloned": "english-2x"}}  # fmt: skip
    raw["merging"] = {**raw["merging"], "methods": methods}
    study = Study.from_mapping(raw)
    merges = grid.merge_grid(study)
    assert grid.grid_counts(merges) == {"1x": 130, "1x-cloned": 130 + 78, "2x": 130}
    for merge in merges:
        config = grid.merge_config(study, merge, "/c", reference=lambda run, _r: run)
        if merge.method.endswith("-trained_base"):
            assert config["merge_method"] == merge.method.split("-")[0]
            assert config["base_model"] == "english-2x"
        elif "base_model" in config:
            assert config["merge_method"] == merge.method
            assert config["base_model"] == paper.raw["merging"]["base"][merge.setup]
