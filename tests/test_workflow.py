"""The workflow as users run it: real Snakemake and DVC runs in a copy of the repository."""

from __future__ import annotations

import os
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


# The paper study's jobs, counted from STUDY.md: five languages (ekk fao isl fas swe); three
# setups (1x, 1x-cloned, 2x); five merge methods; every subset of at least two languages,
# C(5,2) + C(5,3) + C(5,4) + C(5,5) = 10 + 10 + 5 + 1 = 26.
PAPER_PLAN = {
    "fetch_english": 1,
    "fetch_code": 1,
    "fetch_language": 5,  # one per language
    "replay": 1,
    "unimax": 1,
    "tokenizer": 1,
    "pack": 13,  # english-80, english-20, code, 5 languages, 5 replay sets
    "init_seed": 1,
    "train": 21,  # seed, english-1x, english-2x, and (5 languages + multilingual) x 3 setups = 18
    "clone": 2,  # the seed and english-1x, each cloned x2
    "eval_run": 20,  # every trained run but the seed
    "eval_clone": 1,  # english-1x-cloned, the untrained clone
    "merge": 390,  # 26 subsets x 5 methods x 3 setups
    "eval_merge": 390,
    "tidy": 1,
    "tables": 1,
    "leaderboard": 1,  # growup's: every method ranked with intervals (the paper's five by default)
    "model_sizes": 1,
    "figure": 5,  # data_efficiency, english_retention, merge_heatmaps, merged_vs_joint, merge_leaderboard
    "claims": 1,
    "all": 1,
}


def test_paper_config_plans_every_merge_as_a_job_of_its_own(workdir):
    from helpers import planned, planned_resources

    proc = run([str(BIN / "snakemake"), "-n", "--configfile", "config/paper.yaml"], workdir)
    output = proc.stdout + proc.stderr
    plan = planned(output)
    assert plan == {**PAPER_PLAN, "total": sum(PAPER_PLAN.values())}, plan
    train = planned_resources(output, "train")
    # STUDY.md: 32 GPUs for base and multilingual runs, 16 for monolingual ones
    assert train["run=seed"]["gpus"] == train["run=english-2x"]["gpus"] == 32, train["run=seed"]
    assert train["run=multilingual-1x-cloned"]["gpus"] == 32 and train["run=fao-2x"]["gpus"] == 16


def test_the_beyond_the_paper_block_is_one_edit(workdir):
    """config/paper.yaml's default grid is the paper's; uncommenting one line adds growup's three
    methods on every setup and subset (3 x 3 x 26 = 234 merges, each with its evaluation)."""
    from helpers import planned

    config = workdir / "config" / "paper.yaml"
    text = config.read_text()
    (line,) = [x for x in text.splitlines() if x.strip().startswith("# <<: {tsv_m")]
    config.write_text(text.replace(line, line.replace("# <<:", "<<:")))
    plan = planned(run([str(BIN / "snakemake"), "-n", "--configfile", "config/paper.yaml"], workdir).stdout)
    assert plan["merge"] == plan["eval_merge"] == 390 + 234, plan
    assert {k: v for k, v in plan.items() if k not in ("merge", "eval_merge", "total")} == {
        k: v for k, v in PAPER_PLAN.items() if k not in ("merge", "eval_merge")
    }


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
