"""Evaluation through lm-eval agrees with sentence log-probabilities computed directly with torch."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer

from growup import hub
from growup.config import Study
from growup.errors import GrowupError
from growup.evaluate.harness import evaluate, make_lm, study_tasks, task_source
from growup.evaluate.sweep import evaluate_checkpoint, run_checkpoints, sweep
from growup.evaluate.tidy import collect
from growup.models.build import base_config, init_model
from growup.models.checkpoint import load_checkpoint, save_checkpoint
from growup.study import load_config
from helpers import REPO, skip_or_fail


@pytest.fixture(scope="module")
def study(mini_study) -> Study:
    return mini_study


@pytest.fixture(scope="module")
def checkpoint(mini_data, study, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("eval") / "model"
    model = init_model(base_config(study.model, study.tokenizer.vocab_size), seed=3)
    save_checkpoint(
        model,
        out,
        {"operation": "init", "tokens": 123, "flops": 456.0},
        tokenizer_src=mini_data / "tokenizer",
    )
    return out


def sentence_logprob(model, ids: list[int], scored_from: int) -> float:
    """Sum of log p(token_t | tokens_<t) for t >= scored_from, computed directly."""
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].double()
    logprobs = torch.log_softmax(logits[:-1], dim=-1)
    targets = torch.tensor(ids[1:])
    return logprobs[torch.arange(len(targets)), targets][scored_from - 1 :].sum().item()


@pytest.mark.parametrize("prefix", ["eos", "bos", "none"])
def test_lm_eval_verdicts_equal_direct_torch_scores(study, checkpoint, prefix):
    study = replace(study, evaluation=replace(study.evaluation, prefix=prefix, limit=None))
    model, tok = load_checkpoint(checkpoint), AutoTokenizer.from_pretrained(checkpoint)
    results = evaluate(make_lm(model, tok, study), study, ["multiblimp_swe"])
    samples = results["samples"]["multiblimp_swe"]
    ds = hub.load_dataset("jumelet/multiblimp", "swe", "train", study.hub_root)
    assert len(samples) == len(ds) > 100
    correct = 0
    for s in sorted(samples, key=lambda s: s["doc_id"]):
        doc = ds[s["doc_id"]]
        scores = []
        for sentence in (doc["sen"], doc["wrong_sen"]):
            ids = tok.encode(sentence, add_special_tokens=False)
            if prefix == "none":
                scores.append(sentence_logprob(model, ids, scored_from=1))
            else:
                start = tok.eos_token_id if prefix == "eos" else tok.bos_token_id
                scores.append(sentence_logprob(model, [start, *ids], scored_from=1))
        ours = [r[0] for r in s["filtered_resps"]]
        assert ours == pytest.approx(scores, abs=1e-3)
        assert scores[0] != scores[1], "a tie would make the verdict depend on tie-breaking"
        verdict = scores[0] > scores[1]
        assert bool(s["acc"]) == verdict
        correct += verdict
    assert results["results"]["multiblimp_swe"]["acc,none"] == correct / len(samples)


def test_acc_norm_divides_by_characters(study, checkpoint):
    model, tok = load_checkpoint(checkpoint), AutoTokenizer.from_pretrained(checkpoint)
    results = evaluate(make_lm(model, tok, study), study, ["multiblimp_fao"], limit=40)
    ds = hub.load_dataset("jumelet/multiblimp", "fao", "train", study.hub_root)
    for s in results["samples"]["multiblimp_fao"]:
        doc, (good, bad) = ds[s["doc_id"]], [r[0] for r in s["filtered_resps"]]
        assert bool(s["acc_norm"]) == (good / len(doc["sen"]) >= bad / len(doc["wrong_sen"]))


def test_study_tasks_follow_config(study):
    assert study_tasks(study) == [
        "multiblimp_est",
        "multiblimp_fao",
        "multiblimp_isl",
        "multiblimp_fas",
        "multiblimp_swe",
        "multiblimp_eng",
        "growup_blimp_single_error",
    ]
    paper = load_config(REPO / "config" / "paper.yaml")
    assert study_tasks(paper)[-1] == "growup_mpararel"


def test_missing_benchmark_language_is_named(study, checkpoint):
    model, tok = load_checkpoint(checkpoint), AutoTokenizer.from_pretrained(checkpoint)
    lm = make_lm(model, tok, study)
    with pytest.raises(GrowupError, match="multiblimp_xyz"):
        evaluate(lm, study, ["multiblimp_xyz"])
    with pytest.raises(GrowupError, match="multiblimp_deu"):  # lm-eval has it; the mirror does not
        evaluate(lm, replace(study, hub_root=str(hub.hub_root())), ["multiblimp_deu"], limit=5)


def test_sweep_writes_lm_eval_json_and_tidy_rows(study, checkpoint, tmp_path):
    import shutil

    run = tmp_path / "run"
    for step in (10, 20):
        shutil.copytree(checkpoint, run / f"step-{step}")
    assert [s for s, _ in run_checkpoints(run)] == ["10", "20"]
    tasks = ["multiblimp_fao", "growup_blimp_single_error"]
    written = sweep(study, run, "toy", tmp_path / "evals", init=checkpoint, tasks=tasks, limit=20)
    assert [p.name for p in written] == ["0", "10", "20"]
    result = json.loads((tmp_path / "evals" / "toy" / "10" / "multiblimp_fao.json").read_text())
    assert set(result["results"]) == {"multiblimp_fao"} and result["growup"]["tokens"] == 123
    assert "date" not in result
    rows, pairs = collect(tmp_path / "evals", {"fao": "fao"}, 0.95, 200, 0)
    assert len(rows) == len(pairs) == 3 * 2 * 2  # points x tasks x (acc, acc_norm)
    assert all(r["ci_low"] <= r["value"] <= r["ci_high"] and r["ci_high"] - r["ci_low"] > 0.05 for r in rows)
    assert collect(tmp_path / "evals", {"fao": "fao"}, 0.95, 200, 0)[0] == rows  # seeded: the same intervals
    fao = [r for r in rows if r["task"] == "multiblimp_fao" and r["metric"] == "acc"]
    assert [r["step"] for r in fao] == ["0", "10", "20"]
    assert fao[1]["value"] == result["results"]["multiblimp_fao"]["acc,none"] and fao[1]["language"] == "fao"
    assert {r["benchmark"] for r in rows} == {"multiblimp", "blimp"}


def test_a_limited_evaluation_records_its_sample_and_a_second_run_scores_the_same_items(
    study, checkpoint, tmp_path
):
    """With a limit, a seeded stratified sample (not the file's first pairs) is scored, its row
    ids are in the result (for `lm_eval --samples`), and each logged pair is that row."""
    for run in ("first", "second"):
        evaluate_checkpoint(study, checkpoint, run, "0", tmp_path, ["multiblimp_isl"], limit=12)
    results = [
        json.loads((tmp_path / r / "0" / "multiblimp_isl.json").read_text()) for r in ("first", "second")
    ]
    logged = [
        [
            json.loads(line)
            for line in (tmp_path / r / "0" / "multiblimp_isl.samples.jsonl").read_text().splitlines()
        ]
        for r in ("first", "second")
    ]
    sample = results[0]["growup"]["sample"]
    assert sample == results[1]["growup"]["sample"] and sample["size"] == 12 and sample["of"] == 2801
    assert sample["strata"] == ["phenomenon", "grammatical_feature"]
    ids = sample["ids"]
    assert ids != list(range(12)) and [s["doc_id"] for s in logged[0]] == ids == [
        s["doc_id"] for s in logged[1]
    ]
    assert logged[0] == logged[1]
    ds = hub.load_dataset("jumelet/multiblimp", "isl", "train", study.hub_root)
    assert len({ds[i]["phenomenon"] for i in ids}) == 4  # every phenomenon of the file
    model, tok = load_checkpoint(checkpoint), AutoTokenizer.from_pretrained(checkpoint)
    doc = ds[ids[-1]]
    direct = [
        sentence_logprob(model, [tok.eos_token_id, *tok.encode(s, add_special_tokens=False)], scored_from=1)
        for s in (doc["sen"], doc["wrong_sen"])
    ]
    assert logged[0][-1]["loglikelihoods"] == pytest.approx(direct, abs=1e-3)


def test_results_name_datasets_by_hub_id_wherever_the_mirror_lives(study, checkpoint, tmp_path, monkeypatch):
    """Scored with the mirror copied to two different absolute paths, the results and samples are
    the same bytes, name each dataset by its Hub id and never the mirror's path."""
    import shutil

    mirror = hub.hub_root()
    if mirror is None:
        skip_or_fail("this test moves the local Hub mirror: set GROWUP_HUB_ROOT to one")
    tasks = ["multiblimp_fao", "growup_blimp_single_error"]
    repos = sorted({task_source(study, task).hub_id for task in tasks})
    written, roots = [], []
    for where in ("one", "another/place"):
        root = tmp_path / where / "hub"
        for repo in repos:
            shutil.copytree(mirror / repo, root / repo)  # copies, not links: no path leads back
        monkeypatch.setenv(hub.ENV_ROOT, str(root))
        out = tmp_path / where / "evals"
        evaluate_checkpoint(replace(study, hub_root=None), checkpoint, "m", "0", out, tasks, limit=8)
        written.append({p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()})
        roots.append(root)
    assert written[0] == written[1] and len(written[0]) == 2 * len(tasks)
    for data in written[0].values():
        for root in (*roots, mirror):
            assert str(root).encode() not in data and str(root.parent).encode() not in data
    for task in tasks:
        result = json.loads(written[0][Path("m", "0", f"{task}.json")])
        assert result["configs"][task]["dataset_path"] == task_source(study, task).hub_id


def test_missing_run_checkpoints(tmp_path):
    with pytest.raises(GrowupError, match="no step-N checkpoints"):
        run_checkpoints(tmp_path)


@pytest.mark.slow
def test_training_on_a_language_beats_the_untrained_start(study, mini_data, tmp_path):
    """Icelandic MultiBLiMP before and after a few hundred steps of Icelandic training."""
    from growup.train.loop import train

    raw = dict(study.raw)
    raw["training"] = {
        **raw["training"],
        "schedules": {
            **raw["training"]["schedules"],
            "isl": {"steps": 300, "warmup": 10, "decay_start": 240, "decay_steps": 60},
        },
        "checkpoint_every": {"base": 300, "adaptation": 300},
    }
    trained = Study.from_mapping(raw)
    start = tmp_path / "start"
    save_checkpoint(
        init_model(base_config(study.model, study.tokenizer.vocab_size), seed=0),
        start,
        {"operation": "init"},
        tokenizer_src=mini_data / "tokenizer",
    )
    train(trained, "isl-1x", start, tmp_path / "isl-1x", data_dir=mini_data, progress=False)
    scores = {}
    every_pair = replace(study, evaluation=replace(study.evaluation, limit=None))
    for name, ckpt in (("before", start), ("after", tmp_path / "isl-1x" / "final")):
        out = evaluate_checkpoint(every_pair, ckpt, name, "0", tmp_path / "evals", ["multiblimp_isl"])
        scores[name] = json.loads((out / "multiblimp_isl.json").read_text())["results"]["multiblimp_isl"][
            "acc,none"
        ]
    print(f"multiblimp_isl accuracy: untrained {scores['before']:.3f}, after 300 steps {scores['after']:.3f}")
    # 2,801 pairs: a standard error of about 0.009, so +0.05 is more than five of them
    assert scores["after"] >= scores["before"] + 0.05
