"""Reports from a hand-made evaluation table: model-name parsing, tables, claims verdicts, figures."""

from __future__ import annotations

import pandas as pd
import pytest

from growup.report import claims, tables
from growup.report.figures import FIGURES, render
from growup.report.frame import parse_model


def row(model, step, task, language, value, tokens=0, benchmark="multiblimp"):
    return {
        "model": model,
        "step": str(step),
        "task": task,
        "benchmark": benchmark,
        "language": language,
        "metric": "acc",
        "value": value,
        "stderr": 0.01,
        "n": 100,
        "tokens": tokens,
        "flops": tokens * 10.0,
        "total_tokens": tokens,
        "total_flops": tokens * 10.0,
    }


def table(upscaled_better: bool) -> pd.DataFrame:
    """Two languages, three setups, base models, joint runs and merges, with a chosen winner."""
    good, bad = (0.8, 0.6) if upscaled_better else (0.6, 0.8)
    rows = []
    for setup in ("1x", "1x-cloned", "2x"):
        start = {"1x": "english-1x", "1x-cloned": "english-1x-cloned", "2x": "english-2x"}[setup]
        for lang in ("ekk", "fao"):
            rows.append(row(start, 0, f"multiblimp_{lang}", lang, 0.5))
        rows += [
            row(start, 0, "multiblimp_eng", "eng", 0.7),
            row(start, 0, "blimp", "eng", 0.7, benchmark="blimp"),
        ]
        final = bad if setup == "1x" else good
        for lang in ("ekk", "fao"):
            rows += [
                row(f"{lang}-{setup}", 10, f"multiblimp_{lang}", lang, (0.5 + final) / 2, 100),
                row(f"{lang}-{setup}", 20, f"multiblimp_{lang}", lang, final, 200),
            ]
            english = 0.4 if setup == "1x" else 0.6
            if not upscaled_better:
                english = 0.6 if setup == "1x" else 0.4
            rows += [
                row(f"{lang}-{setup}", 20, "multiblimp_eng", "eng", english, 200),
                row(f"{lang}-{setup}", 20, "blimp", "eng", english, 200, benchmark="blimp"),
            ]
        for lang in ("ekk", "fao"):
            rows.append(
                row(f"multilingual-{setup}", 20, f"multiblimp_{lang}", lang, 0.9 if upscaled_better else 0.1)
            )
        for method, bonus in (("linear", 0.0), ("ties", 0.1)):
            merged = final - 0.2 + bonus
            for lang in ("ekk", "fao"):
                rows.append(
                    row(f"merge-{setup}-{method}-ekk+fao", "final", f"multiblimp_{lang}", lang, merged)
                )
            rows.append(row(f"merge-{setup}-{method}-ekk+fao", "final", "multiblimp_eng", "eng", 0.5))
    df = pd.DataFrame(rows)
    return df.join(df["model"].apply(parse_model).apply(pd.Series))


def test_parse_model_names():
    assert parse_model("merge-1x-cloned-dare_ties-ekk+fao") == {
        "kind": "merge",
        "run_language": None,
        "setup": "1x-cloned",
        "method": "dare_ties",
        "subset": "ekk+fao",
    }
    assert parse_model("fas-1x-cloned")["setup"] == "1x-cloned"
    assert parse_model("multilingual-2x")["kind"] == "joint"
    assert parse_model("english-1x")["kind"] == "base"


@pytest.mark.parametrize("better", [True, False])
def test_claims_follow_the_numbers(better):
    text = claims.claims_markdown(table(better), spread=0.05, study="test")
    verdicts = [line.split(": ", 1)[1] for line in text.splitlines() if line.startswith("## ")]
    expected = "**holds**" if better else "**does not hold**"
    assert verdicts[0] == expected  # data efficiency
    assert verdicts[1] == expected  # forgetting
    assert verdicts[2] == expected  # merging vs joint and upscaled merges
    assert verdicts[3] == "**holds**"  # linear vs ties differ by 0.1 >= 0.05
    assert "spread" in text


def test_tables():
    df = table(True)
    final = tables.final_scores(df)
    assert final.loc[("ekk", "2x"), "multiblimp_ekk"] == 0.8
    merges = tables.merge_table(df)
    assert len(merges) == 6 and set(merges["method"]) == {"linear", "ties"}


@pytest.mark.parametrize("name", FIGURES)
def test_figures_render(name, tmp_path):
    paths = render(name, table(True), tmp_path)
    assert [p.suffix for p in paths] == [".pdf", ".png"] and all(p.stat().st_size > 1000 for p in paths)
    again = render(name, table(True), tmp_path / "again")
    assert again[1].read_bytes() == paths[1].read_bytes()  # PNG bytes are stable
