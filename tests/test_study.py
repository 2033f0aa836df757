"""The mini study end to end through `dvc repro` and Snakemake on the mirror (as CI runs it)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from helpers import copy_repo, planned, run_tool

FIGURES = ("data_efficiency", "english_retention", "merge_heatmaps", "merged_vs_joint")
TABLES = ("evals.csv", "final_scores.csv", "final_scores.md", "merges.csv", "merges.md", "model_sizes.md")


@pytest.mark.slow
def test_mini_study_builds_every_figure_table_and_the_claims(study_repo):
    for name in FIGURES:
        for ext in ("pdf", "png"):
            assert (study_repo / "results" / "figures" / f"{name}.{ext}").stat().st_size > 1000
    for name in TABLES:
        assert (study_repo / "results" / "tables" / name).stat().st_size > 0
    sizes = (study_repo / "results" / "tables" / "model_sizes.md").read_text()
    assert "| 1x | 0.59M |" in sizes and "| clone-x2 | 1.97M |" in sizes
    claims = (study_repo / "results" / "claims.md").read_text()
    assert claims.count("## ") == 4 and claims.count("**holds**") + claims.count("**does not hold**") == 4
    assert "Nothing to be done" in run_tool(study_repo, "snakemake", "-n")
    assert "Data and pipelines are up to date" in run_tool(study_repo, "dvc", "status")
    outs = {
        o["path"] for o in yaml.safe_load((study_repo / "dvc.lock").read_text())["stages"]["study"]["outs"]
    }
    assert {"data", "checkpoints", "merges", "evals", "results/figures", "artifacts.json"} <= outs


@pytest.mark.slow
def test_deleting_a_figure_reruns_only_its_plotting_job(study_repo):
    target = "results/figures/merge_heatmaps.pdf"
    (study_repo / target).unlink()
    assert planned(run_tool(study_repo, "snakemake", "-n", target)) == {"figure": 1, "total": 1}
    run_tool(study_repo, "snakemake", "--cores", "1", target)
    assert (study_repo / target).is_file()


@pytest.mark.slow
def test_second_run_from_scratch_gives_identical_tables_and_claims(study_repo, tmp_path: Path):
    again = copy_repo(tmp_path)
    run_tool(again, "snakemake", "--cores", "2")
    for name in (*TABLES, "../claims.md"):
        first = (study_repo / "results" / "tables" / name).read_bytes()
        assert first == (again / "results" / "tables" / name).read_bytes(), name


@pytest.mark.slow
def test_html_report_holds_every_figure_with_its_caption(study_repo, tmp_path: Path):
    out = tmp_path / "report.html"
    run_tool(study_repo, "snakemake", "--report", str(out))
    html = out.read_text(encoding="utf-8")
    assert "Data efficiency (claim 1)" in html and "English retention (claim 2)" in html
    assert all(name in html for name in FIGURES) and "claims.md" in html
