"""The mini study end to end through Snakemake on the mirror (as CI runs it), twice from scratch."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

BIN = Path(sys.executable).parent
FIGURES = ("data_efficiency", "english_retention", "merge_heatmaps", "merged_vs_joint")
TABLES = ("evals.csv", "final_scores.csv", "final_scores.md", "merges.csv", "merges.md", "model_sizes.md")


def snakemake(cwd: Path, *args: str) -> str:
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    proc = subprocess.run(
        [str(BIN / "snakemake"), *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=3600
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return proc.stdout + proc.stderr


def copy_workflow(dest: Path) -> Path:
    for name in ("Snakefile", "workflow", "config"):
        src = REPO / name
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, dest / name)
    return dest


@pytest.fixture(scope="module")
def study_run(hub_root, tmp_path_factory) -> Path:
    work = copy_workflow(tmp_path_factory.mktemp("study"))
    snakemake(work, "--cores", "2")
    return work


def planned(output: str) -> dict[str, int]:
    """Job counts per rule from a dry run's summary table."""
    counts, inside = {}, False
    for line in output.splitlines():
        parts = line.split()
        if parts[:2] == ["job", "count"]:
            inside = True
            continue
        if inside and len(parts) == 2 and parts[1].isdigit():
            counts[parts[0]] = int(parts[1])
        elif inside and counts and not parts:
            break
    return counts


@pytest.mark.slow
def test_mini_study_builds_every_figure_table_and_the_claims(study_run):
    for name in FIGURES:
        for ext in ("pdf", "png"):
            assert (study_run / "results" / "figures" / f"{name}.{ext}").stat().st_size > 1000
    for name in TABLES:
        assert (study_run / "results" / "tables" / name).stat().st_size > 0
    claims = (study_run / "results" / "claims.md").read_text()
    assert claims.count("## ") == 4 and claims.count("**holds**") + claims.count("**does not hold**") == 4
    assert "Nothing to be done" in snakemake(study_run, "-n")


@pytest.mark.slow
def test_deleting_a_figure_reruns_only_its_plotting_job(study_run):
    target = "results/figures/merge_heatmaps.pdf"
    (study_run / target).unlink()
    assert planned(snakemake(study_run, "-n", target)) == {"figure": 1, "total": 1}
    snakemake(study_run, "--cores", "1", target)
    assert (study_run / target).is_file()


@pytest.mark.full
def test_second_run_from_scratch_gives_identical_tables(study_run, tmp_path):
    again = copy_workflow(tmp_path)
    snakemake(again, "--cores", "2")
    for name in (*TABLES, "../claims.md"):
        first = (study_run / "results" / "tables" / name).read_bytes()
        assert first == (again / "results" / "tables" / name).read_bytes(), name
