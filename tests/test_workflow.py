"""The workflow as users run it: real Snakemake and DVC runs in a copy of the repository."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from helpers import REPO

BIN = Path(sys.executable).parent


def run(cmd: list[str], cwd: Path, ok: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600, env=env)
    if ok:
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    for name in ("Snakefile", "dvc.yaml", ".dvc", "workflow", "config", "profiles", "src"):
        src = REPO / name
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, tmp_path / name)
    return tmp_path


SIZES = "results/tables/model_sizes.md"


def test_paper_config_plans_every_merge_as_a_job_of_its_own(workdir):
    from helpers import planned

    proc = run([str(BIN / "snakemake"), "-n", "--configfile", "config/paper.yaml"], workdir)
    plan = planned(proc.stdout + proc.stderr)
    assert {rule: plan.get(rule) for rule in ("train", "eval_run", "merge", "eval_merge", "pack")} == {
        "train": 21,
        "eval_run": 20,
        "merge": 390,
        "eval_merge": 390,
        "pack": 13,
    }, plan
    for rule in ("fetch_english", "fetch_code", "replay", "tokenizer", "unimax", "clone", "tidy", "claims"):
        assert plan.get(rule, 0) >= 1, (rule, plan)
    assert plan["figure"] == 4 and plan["fetch_language"] == 5
    assert re.search(r"gpus=32\b", proc.stdout + proc.stderr)


def test_paper_config_target(workdir):
    run([str(BIN / "snakemake"), "--cores", "1", "--configfile", "config/paper.yaml", "--", SIZES], workdir)
    table = (workdir / "results" / "tables" / "model_sizes.md").read_text()
    assert "| 1x | 180.08M |" in table and "| clone-x2 | 572.49M |" in table


def test_invalid_config_stops_before_any_job(workdir):
    raw = yaml.safe_load((workdir / "config" / "config.yaml").read_text())
    raw["model"]["hidden_act"] = "swish"
    (workdir / "config" / "bad.yaml").write_text(yaml.safe_dump(raw))
    proc = run([str(BIN / "snakemake"), "--cores", "1", "--configfile", "config/bad.yaml"], workdir, ok=False)
    assert proc.returncode != 0
    assert "'model.hidden_act'" in proc.stderr and "swish" in proc.stderr
    assert not (workdir / "results").exists()


def test_snakemake_lint_is_clean(workdir):
    proc = run([str(BIN / "snakemake"), "--lint"], workdir)
    assert "Congratulations" in proc.stdout + proc.stderr
