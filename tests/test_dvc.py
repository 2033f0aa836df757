"""Artifacts through DVC: push the mini study to the default (local-folder) remote, clone afresh,
pull, restore the build order, and Snakemake plans nothing; a corrupted pulled file is not trusted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import planned, run_tool

REBUILD = {"fetch_english", "fetch_code", "fetch_language", "pack", "tokenizer", "train", "clone"}


@pytest.fixture(scope="module")
def pulled(study_repo: Path) -> Path:
    """A fresh clone of the study repository after `dvc pull` and `growup artifacts restore`."""
    run_tool(study_repo, "dvc", "push")
    run_tool(study_repo, "git", "add", "dvc.lock", "artifacts.json")
    run_tool(study_repo, "git", "commit", "-q", "-m", "study artifacts")
    clone = study_repo.parent / "clone"
    run_tool(study_repo.parent, "git", "clone", "-q", str(study_repo), str(clone))
    run_tool(clone, "dvc", "pull")
    run_tool(clone, "growup", "artifacts", "restore")
    return clone


@pytest.mark.slow
def test_default_remote_is_a_folder_beside_the_checkout(study_repo):
    store = study_repo.parent / "growup-dvc-store"
    run_tool(study_repo, "dvc", "push")
    assert store.is_dir() and any(store.rglob("*"))


@pytest.mark.slow
def test_pulled_clone_plans_no_job_and_rebuilds_a_figure_without_training(pulled):
    assert not (pulled / ".snakemake" / "metadata").exists()
    assert "Nothing to be done" in run_tool(pulled, "snakemake", "-n")
    target = "results/figures/data_efficiency.png"
    (pulled / target).unlink()
    assert planned(run_tool(pulled, "snakemake", "-n", target)) == {"figure": 1, "total": 1}
    run_tool(pulled, "snakemake", "--cores", "1", target)
    assert (pulled / target).stat().st_size > 1000


@pytest.mark.slow
def test_a_corrupted_pulled_file_is_detected_and_rebuilt_not_trusted(pulled):
    victim = sorted((pulled / "evals" / "isl-1x").rglob("multiblimp_isl.json"))[-1]
    data = json.loads(victim.read_text())
    data["results"]["multiblimp_isl"]["acc,none"] = 1.0
    victim.write_text(json.dumps(data))
    assert "modified:" in run_tool(pulled, "dvc", "status")
    out = run_tool(pulled, "growup", "artifacts", "restore")
    assert "stale evals/isl-1x" in out
    plan = planned(run_tool(pulled, "snakemake", "-n"))
    assert plan.get("eval_run") == 1 and not REBUILD & set(plan), plan


@pytest.mark.slow
def test_a_partial_pull_of_evaluations_rebuilds_a_figure_without_checkpoints(pulled):
    clone = pulled.parent / "partial"
    run_tool(pulled.parent, "git", "clone", "-q", str(pulled.parent / "repo"), str(clone))
    run_tool(clone, "dvc", "pull", "evals", "results/tables", "results/figures", "results/claims.md")
    run_tool(clone, "growup", "artifacts", "restore")
    assert not (clone / "checkpoints").exists()
    assert "Nothing to be done" in run_tool(clone, "snakemake", "-n")
    (clone / "results/figures/english_retention.pdf").unlink()
    assert planned(run_tool(clone, "snakemake", "-n")) == {"figure": 1, "all": 1, "total": 2}
