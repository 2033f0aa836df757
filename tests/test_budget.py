"""`growup budget`: every training run's FLOPs and GPU-hours, checked against the study's own table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from growup.models.build import study_configs
from growup.models.flops import count_parameters
from growup.study import load_config
from growup.train.budget import GPUS, format_markdown, format_text, gpu_hours, study_budget
from helpers import REPO

GROWUP = str(Path(sys.executable).parent / "growup")
PAPER = REPO / "config" / "paper.yaml"

# STUDY.md "Training": steps per run; every run's batch is 5,120 sequences of 2,048 tokens.
STEPS = {
    "seed": 15244,
    "english": 3572,
    "ekk": 7087,
    "fao": 144,
    "isl": 2514,
    "fas": 5928,
    "swe": 6279,
    "multilingual": 21940,
}
# STUDY.md's rounded token counts (billions).
TOKENS_B = {"seed": 159.8, "english": 37.5, "ekk": 74.3, "fao": 1.51, "isl": 26.4, "fas": 62.2, "swe": 65.8}
TOKENS_PER_STEP = 5120 * 2048
LAYERS, HEAD_DIM, SEQ = 30, 64, 2048  # STUDY.md "Architecture"


@pytest.fixture(scope="module")
def paper():
    return load_config(PAPER)


@pytest.fixture(scope="module")
def rows(paper):
    return {r.run: r for r in study_budget(paper, "h100-sxm", 0.4)}


def expected(run: str) -> tuple[str, int]:
    """(schedule key, query heads) of a run, from its name alone."""
    key = "seed" if run == "seed" else run.split("-", 1)[0]
    small = run in ("seed", "english-1x") or run.endswith("-1x")
    return key, (9 if small else 18)


def test_parameter_counts_are_the_studys(paper):
    n = {name: count_parameters(c).total for name, c in study_configs(paper).items()}
    assert round(n["1x"] / 1e6, 2) == 180.08 and round(n["clone-x2"] / 1e6, 2) == 572.49


def test_every_run_is_6n_tokens_plus_attention(paper, rows):
    n = {name: count_parameters(c).total for name, c in study_configs(paper).items()}
    assert len(rows) == 3 + 6 * 3
    for run, row in rows.items():
        key, heads = expected(run)
        params = n["1x"] if heads == 9 else n["clone-x2"]
        tokens = STEPS[key] * TOKENS_PER_STEP
        assert row.params == params and row.steps == STEPS[key] and row.tokens == tokens, run
        assert row.flops_6n == pytest.approx(6 * params * tokens, rel=1e-12), run
        attention = 12 * LAYERS * heads * HEAD_DIM * SEQ
        assert row.flops_attn == pytest.approx((6 * params + attention) * tokens, rel=1e-12), run
        if key in TOKENS_B:
            assert row.tokens / 1e9 == pytest.approx(TOKENS_B[key], abs=0.06), run


def test_gpu_hours_formula(rows):
    # one hour of a 1 PFLOP/s GPU at 50% utilisation executes 0.5e15 x 3,600 = 1.8e18 FLOPs
    assert gpu_hours(1.8e18, 0.5, 1e15) == pytest.approx(1.0)
    # The seed run by hand: 15,244 steps x 5,120 x 2,048 = 159,844,925,440 tokens (STUDY.md ~159.8B)
    # x 1,505,146,752 FLOPs per token (6 x 180,078,912 parameters + 12 x 30 x 576 x 2,048 attention;
    # STUDY.md ~1.51 GFLOP) = 2.4059e20 FLOPs; at 40% of an H100 SXM's 989.4 TFLOP/s (dense bf16)
    # = 3.9576e14 FLOP/s that is 607,919.1 GPU-seconds = 168.866 GPU-hours, 5.277 h on 32 GPUs
    # (STUDY.md: 32 GPUs for base runs, 16 for monolingual ones).
    seed = rows["seed"]
    assert seed.gpu_hours == pytest.approx(168.866, abs=0.001)
    assert seed.gpus == 32 and rows["isl-2x"].gpus == 16
    assert seed.wall_hours == pytest.approx(5.2771, abs=0.0001)


def test_mfu_and_gpu_scale_the_hours(paper, rows):
    a100 = {r.run: r for r in study_budget(paper, "a100", 0.2)}
    for run, row in rows.items():
        assert a100[run].flops_attn == row.flops_attn
        assert a100[run].gpu_hours == pytest.approx(row.gpu_hours * 2 * GPUS["h100-sxm"] / GPUS["a100"])


def test_cpu_runs_have_no_wall_hours():
    mini = load_config(REPO / "config" / "config.yaml")
    row = study_budget(mini)[0]
    assert row.gpus == 0 and row.wall_hours is None
    assert "| seed | 1x |" in format_markdown(mini, study_budget(mini), "h100-sxm", 0.4)


def test_tables_list_every_run_and_the_total(paper, rows):
    budget = list(rows.values())
    total_hours = sum(r.gpu_hours for r in budget)
    md = format_markdown(paper, budget, "h100-sxm", 0.4)
    lines = [line for line in md.splitlines() if line.startswith("| ")]
    assert len(lines) == 1 + len(budget) + 1
    assert lines[1].startswith("| seed | 1x | 180.08M | 15,244 | 159.84B |")
    assert lines[-1].startswith("| **total** |") and f"**{total_hours:,.1f}**" in lines[-1]
    text = format_text(paper, budget, "h100-sxm", 0.4)
    assert text.splitlines()[-3].startswith("total") and f"{total_hours:,.1f}" in text
    assert "MFU 0.4 on h100-sxm (989.4 TFLOP/s" in text


def growup(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([GROWUP, *args], capture_output=True, text=True, timeout=300)


def test_cli_writes_the_markdown_table(tmp_path, rows):
    out = tmp_path / "budget.md"
    proc = growup("budget", "--configfile", str(PAPER), "--format", "markdown", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    text = out.read_text()
    assert text.count("\n| ") == len(rows) + 1
    for run, row in rows.items():
        assert f"| {run} | {row.model} |" in text


def test_merges_are_counted_the_paper_s_and_those_beyond_it():
    from growup.config import Study

    paper = load_config(PAPER)
    assert "Merges (not in the table): 390, each evaluated once: 390 with the paper's methods, 0 beyond" in (
        format_text(paper, study_budget(paper), "h100-sxm", 0.4)
    )
    raw = dict(paper.raw)
    methods = {**raw["merging"]["methods"], **{m: {"base": True} for m in ("tsv_m", "iso_c", "iso_cts")}}
    on = Study.from_mapping({**raw, "merging": {**raw["merging"], "methods": methods}})
    assert "624, each evaluated once: 390 with the paper's methods, 234 beyond the paper (tsv_m 78, " in (
        format_markdown(on, study_budget(on), "h100-sxm", 0.4)
    )


def test_cli_text_default_and_options():
    proc = growup("budget", "--configfile", str(PAPER), "--gpu", "a100", "--mfu", "0.5")
    assert proc.returncode == 0, proc.stderr
    assert "total" in proc.stdout and "on a100 (312.0 TFLOP/s" in proc.stdout and "MFU 0.5" in proc.stdout


def test_cli_rejects_bad_mfu_and_unknown_gpu():
    proc = growup("budget", "--configfile", str(PAPER), "--mfu", "1.5")
    assert proc.returncode == 2 and "MFU must be in (0, 1]" in proc.stderr and "Traceback" not in proc.stderr
    proc = growup("budget", "--configfile", str(PAPER), "--gpu", "tpu-v9")
    assert proc.returncode == 2 and "invalid choice" in proc.stderr
