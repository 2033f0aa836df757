"""The mini study end to end through `dvc repro` and Snakemake on the mirror (as CI runs it)."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
import yaml

from growup.study import FIGURES
from helpers import REPO, planned, run_tool

TABLES = (
    "evals.csv",
    "final_scores.csv",
    "final_scores.md",
    "merges.csv",
    "merges.md",
    "merge_leaderboard.csv",
    "merge_leaderboard.md",
    "model_sizes.md",
)


@pytest.mark.slow
def test_mini_study_builds_every_figure_table_and_the_claims(study_repo, tmp_path):
    from figure_checks import check_files

    from growup.report.frame import load

    tables = study_repo / "results" / "tables"
    evals, board = load(tables / "evals.csv"), pd.read_csv(tables / "merge_leaderboard.csv")
    for name in FIGURES:  # each file is the figure drawn from the built table, and plots it
        check_files(name, evals, study_repo / "results" / "figures", tmp_path, board)
    for name in TABLES:
        assert (study_repo / "results" / "tables" / name).stat().st_size > 0
    sizes = (study_repo / "results" / "tables" / "model_sizes.md").read_text()
    assert "| 1x | 0.59M |" in sizes and "| clone-x2 | 1.97M |" in sizes
    claims = (study_repo / "results" / "claims.md").read_text()
    verdicts = re.findall(r"^## (\d[ab]?)\. .*: \*\*(holds|does not hold|inconclusive)\*\*$", claims, re.M)
    assert [claim for claim, _ in verdicts] == ["1a", "1b", "2", "3a", "3b", "4", "5"], claims
    assert "## Verdict rule" in claims and claims.count("| 95% interval |") == 7
    board = (study_repo / "results" / "tables" / "merge_leaderboard.csv").read_text()
    assert all(f",{method}," in board for method in ("tsv_m", "iso_c", "iso_cts", "ties")), board[:500]
    # each claim states its test; every comparison its power (MDD, and pairs needed when undecided)
    assert claims.count("\nTest: ") == 7 and "non-inferiority with margin δ = 1 accuracy point" in claims
    assert claims.count("| MDD (80%) | pairs needed |") == 7
    for log in (study_repo / "logs" / "report").glob("figure_*.log"):
        assert "clipped" not in log.read_text() and "overlaps" not in log.read_text()
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
def test_html_report_holds_every_figure_with_its_caption(study_repo, tmp_path: Path):
    out = tmp_path / "report.html"
    run_tool(study_repo, "snakemake", "--report", str(out))
    html = out.read_text(encoding="utf-8")
    assert "Data efficiency (claim 1)" in html and "English retention (claim 2)" in html
    assert all(name in html for name in FIGURES) and "claims.md" in html


# Dependency tracking on the built study: a job reruns when, and only when, a value it reads
# changed. Each test changes one thing and counts the planned jobs per rule (the dry run's table).
REPORT = {"tidy", "tables", "leaderboard", "figure", "claims", "all", "total"}


def _plan(repo: Path, *args: str) -> dict[str, int]:
    return planned(run_tool(repo, "snakemake", "-n", *args))


@pytest.mark.slow
def test_a_comment_or_a_touch_of_the_config_plans_nothing(study_repo):
    config = study_repo / "config" / "config.yaml"
    text = config.read_text()
    try:
        config.write_text(text + "# a comment changes no value\n")
        assert _plan(study_repo) == {}
        config.write_text(text)  # touched: same bytes, a new mtime
        assert _plan(study_repo) == {}
    finally:
        config.write_text(text)


@pytest.mark.slow
@pytest.mark.parametrize("value", ["method_spread: 0.5", "margin: 2.5"])
def test_a_report_value_plans_only_the_claims(study_repo, value):
    assert _plan(study_repo, "--config", f"report={{{value}}}") == {"claims": 1, "all": 1, "total": 2}


@pytest.mark.slow
def test_one_languages_schedule_plans_only_its_runs_merges_and_the_report(study_repo):
    from growup.merge.grid import merge_grid
    from growup.study import load_config

    config = study_repo / "config" / "config.yaml"
    text = config.read_text()
    raw = yaml.safe_load(text)
    raw["training"]["schedules"]["ekk"]["steps"] += 2
    try:
        config.write_text(yaml.safe_dump(raw))
        plan = _plan(study_repo)
    finally:
        config.write_text(text)
    with_ekk = sum("ekk" in m.subset for m in merge_grid(load_config(config)))
    assert 0 < with_ekk < len(merge_grid(load_config(config)))  # some merges have no ekk
    assert plan == {
        "train": 3,
        "eval_run": 3,
        "merge": with_ekk,
        "eval_merge": with_ekk,
        "tidy": 1,
        "tables": 1,
        "leaderboard": 1,
        "figure": len(FIGURES),
        "claims": 1,
        "all": 1,
        "total": 6 + 2 * with_ekk + 5 + len(FIGURES),
    }


@pytest.mark.slow
def test_an_evaluation_value_plans_evaluation_and_report_jobs_only(study_repo):
    from growup.merge.grid import merge_grid
    from growup.study import load_config, trained_runs

    study = load_config(study_repo / "config" / "config.yaml")
    plan = _plan(study_repo, "--config", "evaluation={limit: 7}")
    # every evaluation job: each trained run but the seed, the clone, every merge; then the report
    runs, merges = len(trained_runs(study)) - 1, len(merge_grid(study))
    evaluations = {"eval_run": runs, "eval_clone": 1, "eval_merge": merges}
    # 5 languages x 3 setups + 3 multilingual + english-1x-cloned and english-2x; 3 setups x 8 methods
    # (the paper's five and growup's three) x 2 subsets
    assert evaluations == {"eval_run": 20, "eval_clone": 1, "eval_merge": 48}
    report = {"tidy": 1, "tables": 1, "leaderboard": 1, "figure": len(FIGURES), "claims": 1, "all": 1}
    assert plan == {**evaluations, **report, "total": sum(evaluations.values()) + sum(report.values())}, plan


@pytest.mark.slow
def test_a_deleted_merge_is_one_target_and_one_job(study_repo):
    import shutil

    target = "merges/2x/ties/isl+swe"
    shutil.rmtree(study_repo / target)
    assert _plan(study_repo, target) == {"merge": 1, "total": 1}
    run_tool(study_repo, "snakemake", "--cores", "1", target)
    assert (study_repo / target / "model.safetensors").is_file()
    run_tool(study_repo, "snakemake", "--cores", "2")  # its evaluation and the report follow
    assert _plan(study_repo) == {}


@pytest.mark.slow
def test_a_dry_run_of_one_new_merge_plans_exactly_that_merge(study_repo, tmp_path):
    """A merge with one of growup's methods is a target of its own, like any mergekit method's."""
    import shutil

    target = "merges/1x-cloned/tsv_m/ekk+fao+isl+fas+swe"
    shutil.move(study_repo / target, tmp_path / "merge")  # put back: later tests need the study whole
    try:
        assert _plan(study_repo, target) == {"merge": 1, "total": 1}
    finally:
        shutil.move(tmp_path / "merge", study_repo / target)


@pytest.mark.slow
def test_the_rebuild_equals_the_published_artifacts_byte_for_byte(study_repo):
    """The determinism check: artifacts.json and dvc.lock were recorded by a build of this study in
    another folder (the checkout that committed them), `study_repo` is a fresh build here, so
    equal hashes are two builds, in two folders, giving the same bytes: every file of data,
    checkpoints, merges, evaluations, tables, figures and the claims (this also holds what a
    second build from scratch of the tables and claims would show). When this fails after a change
    that alters an output, refresh both (dvc repro) and say why in the commit."""
    from growup import artifacts

    out = run_tool(study_repo, "growup", "artifacts", "verify", "--manifest", str(REPO / "artifacts.json"))
    assert re.search(r"^all\s+\d+\s+0\s+0\s+\d+\s+0$", out, re.M), out
    report = artifacts.verify(study_repo, str(REPO / "artifacts.json"))
    identical = {path for groups in report.values() for path in groups["identical"]}
    off = {k: p for groups in report.values() for k, p in groups.items() if k != "identical" and p}
    assert not off, off
    compared = {f"results/tables/{name}" for name in (*TABLES, "pairs.jsonl")} | {"results/claims.md"}
    compared |= {f"results/figures/{name}.{ext}" for name in FIGURES for ext in ("pdf", "png")}
    assert compared <= identical, sorted(compared - identical)
    assert {p.split("/")[0] for p in identical} >= {"data", "checkpoints", "merges", "evals", "results"}

    def outs(lock: Path) -> dict[str, str]:  # artifacts.json itself records build order, which varies
        stage = yaml.safe_load(lock.read_text())["stages"]["study"]
        return {o["path"]: o["md5"] for o in stage["outs"] if o["path"] != "artifacts.json"}

    assert outs(study_repo / "dvc.lock") == outs(REPO / "dvc.lock")
