"""Reports from synthetic evaluations whose answer is known: model-name parsing, tables with
intervals, claims verdicts (holds / does not hold / inconclusive), figures."""

from __future__ import annotations

import re

import numpy as np
import pytest
from figure_checks import check_files
from synthetic_evals import study

from growup.report import claims, tables
from growup.report.figures import render
from growup.report.frame import load, parse_model
from growup.report.leaderboard import leaderboard, write
from growup.study import FIGURES, LEADERBOARD

VERDICT = re.compile(r"^## (\d[ab]?)\. .*: \*\*(holds|does not hold|inconclusive)\*\*$")


def verdicts(text: str) -> dict[str, str]:
    return {m[1]: m[2] for line in text.splitlines() if (m := VERDICT.match(line))}


def markdown(mode: str, n: int, spread: float = 0.05) -> str:
    df, pairs = study(mode, n=n)
    return claims.claims_markdown(
        df, pairs, confidence=0.95, resamples=1000, seed=0, spread=spread, study="test"
    )


def test_parse_model_names():
    assert parse_model("merge-1x-cloned-dare_ties-ekk+fao") == {
        "kind": "merge",
        "run_language": None,
        "setup": "1x-cloned",
        "method": "dare_ties",
        "subset": "ekk+fao",
        "replicate": None,
    }
    assert parse_model("merge-2x-ties-isl+swe-s7") | {"replicate": None} == parse_model(
        "merge-2x-ties-isl+swe"
    )
    assert parse_model("fas-1x-cloned-s12")["replicate"] == 12
    assert parse_model("fas-1x-cloned")["setup"] == "1x-cloned"
    assert parse_model("multilingual-2x")["kind"] == "multilingual"
    assert parse_model("english-1x")["kind"] == "english"
    assert parse_model("seed")["kind"] == "seed"


@pytest.mark.parametrize(
    ("mode", "n", "expected"),
    [
        ("better", 2000, "holds"),
        ("worse", 2000, "does not hold"),
        ("tiny", 50, "inconclusive"),
    ],
)
def test_claims_follow_the_per_pair_results(mode, n, expected):
    text = markdown(mode, n)
    found = verdicts(text)
    assert list(found) == ["1a", "1b", "2", "3a", "3b", "4"]
    assert {k: v for k, v in found.items() if k != "4"} == dict.fromkeys(
        ["1a", "1b", "2", "3a", "3b"], expected
    )
    # methods differ by 0.1 > 0.05 on 2,000 pairs; by 0.02 on 50 pairs nothing is decided
    assert found["4"] == ("inconclusive" if mode == "tiny" else "holds")
    assert "Holm" in text and "95% interval" in text


def test_every_claim_row_has_a_difference_an_interval_and_a_decision():
    text = markdown("better", 200)
    rows = [
        line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| language |")
    ]
    body = [r for r in rows if re.search(r"\[[+-]\d\.\d{3}, [+-]\d\.\d{3}\]", r)]
    assert len(body) >= 6 * 2
    assert all(r.rstrip(" |").split(" | ")[-5] in {"for", "against", "undecided"} for r in body)


def test_spread_threshold_is_the_null_value():
    assert verdicts(markdown("better", 2000, spread=0.05))["4"] == "holds"
    assert verdicts(markdown("better", 2000, spread=0.2))["4"] == "does not hold"


def test_claims_repeat_exactly():
    assert markdown("tiny", 50) == markdown("tiny", 50)


def test_tables_carry_intervals(tmp_path):
    df, _ = study("better", n=200)
    final = tables.final_scores(df)
    assert final.loc[("ekk", "2x"), "multiblimp_ekk"] == 0.8
    low, high = final.loc[("ekk", "2x"), ["multiblimp_ekk_low", "multiblimp_ekk_high"]]
    assert low < 0.8 < high and high - low < 0.2
    merges = tables.merge_table(df)
    assert len(merges) == 6 and set(merges["method"]) == {"linear", "ties"}
    assert (merges["target_acc_low"] < merges["target_acc"]).all()
    tables.write(final, tmp_path / "final_scores")
    md = (tmp_path / "final_scores.md").read_text()
    assert re.search(r"0\.800 \[0\.7\d\d, 0\.8\d\d\]", md) and "_low" not in md


def test_old_evals_csv_without_intervals_still_loads(tmp_path):
    df, _ = study("better", n=50)
    old = df.drop(
        columns=["ci_low", "ci_high", "kind", "run_language", "setup", "method", "subset", "replicate"]
    )
    old.to_csv(tmp_path / "evals.csv", index=False)
    loaded = load(tmp_path / "evals.csv")
    assert loaded["ci_low"].isna().all()
    assert "multiblimp_ekk" in tables.with_intervals(tables.final_scores(loaded)).columns


@pytest.mark.parametrize("name", FIGURES)
def test_figures_render(name, tmp_path):
    df, pairs = study("better", n=50, methods=("linear", "ties", "tsv_m"))
    board = leaderboard(df, pairs, confidence=0.95, resamples=200, seed=0) if name == LEADERBOARD else None
    paths = render(name, df, tmp_path, leaderboard=board)
    assert [p.suffix for p in paths] == [".pdf", ".png"]
    check_files(name, df, tmp_path, tmp_path / "check", board)  # the files are the figure of the table
    again = render(name, df, tmp_path / "again", leaderboard=board)
    assert again[1].read_bytes() == paths[1].read_bytes()  # PNG bytes are stable


# claim 5 and the leaderboard: methods in list order gain 0.1 each ("better"/"worse"), 0.02 ("tiny")
PAPER_FIRST = ("linear", "ties", "iso_c", "tsv_m")  # growup's two above the paper's best (ties)
PAPER_LAST = ("iso_c", "tsv_m", "linear", "ties")  # both below it


@pytest.mark.parametrize(
    ("methods", "n", "expected"),
    [(PAPER_FIRST, 2000, "holds"), (PAPER_LAST, 2000, "does not hold"), (PAPER_FIRST, 50, "inconclusive")],
)
def test_the_language_merging_claim_follows_the_per_pair_results(methods, n, expected):
    df, pairs = study("tiny" if n == 50 else "better", n=n, methods=methods)
    text = claims.claims_markdown(df, pairs, confidence=0.95, resamples=1000, seed=0, spread=0.05, study="t")
    assert verdicts(text)["5"] == expected
    section = text.split("## 5. ", 1)[1]
    assert section.count("| ties |") == 6  # 3 setups x 2 methods, each against ties


def test_without_methods_beyond_the_paper_the_claim_is_not_checked():
    assert "## 5. Language-specialised merging beats the paper's best method: **not checked**" in markdown(
        "better", 50
    )


def test_leaderboard_ranks_every_method_with_intervals_and_holm(tmp_path):
    df, pairs = study("better", n=400, languages=("ekk", "fao", "isl"), methods=PAPER_FIRST,
                      subsets=["ekk+fao", "ekk+fao+isl"])  # fmt: skip
    board = leaderboard(df, pairs, confidence=0.95, resamples=1000, seed=0)
    assert len(board) == 3 * 3 * 4  # setups x (all + 2 subsets) x methods
    top = board[(board["setup"] == "2x") & (board["subset"] == "all")].set_index("method")
    assert list(top.sort_values("rank").index) == ["tsv_m", "iso_c", "ties", "linear"]
    assert top.loc["tsv_m", "family"] == "beyond the paper" and top.loc["ties", "family"] == "paper"
    assert (top["best_paper_method"] == "ties").all() and top["subsets"].eq(2).all()
    assert top.loc["tsv_m", "vs_best_paper"] == pytest.approx(0.2) and np.isnan(
        top.loc["ties", "vs_best_paper"]
    )
    assert top.loc["tsv_m", "vs_joint"] == pytest.approx(top.loc["tsv_m", "target_acc"] - 0.9)
    for name in ("target_acc", "english_acc", "joint_acc", "vs_best_paper", "vs_joint"):
        rows = board[board[name].notna()]
        assert (rows[f"{name}_low"] <= rows[name]).all() and (rows[name] <= rows[f"{name}_high"]).all(), name
    assert (top.loc[["tsv_m", "iso_c"], "vs_best_paper_p_holm"] < 0.05).all()
    write(board, tmp_path / "merge_leaderboard")
    md = (tmp_path / "merge_leaderboard.md").read_text()
    assert re.search(r"\| \+0\.200 \[\+0\.1\d\d, \+0\.2\d\d\] \|", md) and "nan" not in md
    again = leaderboard(df, pairs, confidence=0.95, resamples=1000, seed=0)
    assert again.equals(board)
