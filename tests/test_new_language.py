"""A language growup has never seen joins from config alone, and each bad value for one is refused
at config load, before any job, with one line naming the key and the value: an unknown FineWeb-2
subset, a MultiBLiMP code lm-eval has no task for, a key that collides with a run-name token, a
missing schedule. A language without MultiBLiMP is scored on the English benchmarks, and says so."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from growup.config import Study, resolve_config
from growup.errors import ConfigError
from growup.evaluate.harness import merge_tasks, run_tasks, study_tasks
from growup.study import language_subsets, load_config, merge_grid, runs_to_train, trained_runs
from helpers import REPO

SCHEDULE = {"steps": 4, "warmup": 1, "decay_start": 3, "decay_steps": 1}


def with_language(key: str, subset: str = "swe_Latn", multiblimp: str | None = "swe", schedule: bool = True):
    """The mini config with one more language (by default with a subset and code that exist)."""
    raw = resolve_config(REPO / "config" / "config.yaml")
    raw["data"]["languages"][key] = {"subset": subset, "shuffle": True, "multiblimp": multiblimp}
    if schedule:
        raw["training"]["schedules"][key] = SCHEDULE
    return raw


# case -> (config, the key its one line names, the value it names)
BAD = {
    "unknown FineWeb-2 subset": (
        with_language("dan", subset="dan_Xyzw"),
        "data.languages.dan.subset",
        "dan_Xyzw",
    ),
    "MultiBLiMP code without an lm-eval task": (
        with_language("dan", multiblimp="dnk"),
        "data.languages.dan.multiblimp",
        "dnk",
    ),
    "key english": (with_language("english"), "data.languages.english", "english"),
    "key multilingual": (with_language("multilingual"), "data.languages.multilingual", "multilingual"),
    "key 1x": (with_language("1x"), "data.languages.1x", "1x"),
    "key with +": (with_language("dan+swe"), "data.languages.dan+swe", "dan+swe"),
    "key eng": (with_language("eng"), "data.languages.eng", "eng"),
    "no schedule": (with_language("dan", schedule=False), "training.schedules", "dan"),
}


def write(tmp_path: Path, raw: dict) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_new_language_is_one_line_at_config_load(case, hub_root, tmp_path):
    raw, key, value = BAD[case]
    if hub_root is None and "FineWeb-2" in case:
        pytest.skip("subsets are checked against the dataset card of a local mirror (or the HF cache)")
    path = write(tmp_path, raw)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    (line,) = str(err.value).splitlines()
    assert line.startswith(f"{path}: config key {key!r}"), line
    assert repr(value) in line or f"[{value!r}]" in line, line
    assert len(line) < 450, line


def test_snakemake_refuses_a_colliding_language_before_the_dag(tmp_path):
    path = write(tmp_path, with_language("english"))
    snakemake = [str(Path(sys.executable).parent / "snakemake"), "-n", "-s", str(REPO / "Snakefile")]
    proc = subprocess.run(
        [*snakemake, "--directory", str(tmp_path), "--configfile", str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "Building DAG" not in out
    assert f"{path}: config key 'data.languages.english' = 'english': collides with" in out, out


def test_a_new_language_joins_every_part_of_the_grid(tmp_path):
    study = load_config(write(tmp_path, with_language("dan")))
    runs = trained_runs(study)
    assert {"dan-1x", "dan-1x-cloned", "dan-2x"} <= set(runs) and runs_to_train(study) == runs
    assert "multiblimp_swe" in run_tasks(study, "dan-2x")
    assert "replay-dan" in study.data.raw_datasets and "dan" in study.data.raw_datasets
    every = Study.from_mapping({**study.raw, "merging": {**study.raw["merging"], "subsets": None}})
    assert len(language_subsets(every)) == 2**6 - 6 - 1  # every subset of >= 2 of six languages


def test_must_include_keeps_the_subsets_with_the_new_language(tmp_path):
    raw = with_language("dan")
    raw["merging"].update(subsets=None, must_include=["dan"])
    study = load_config(write(tmp_path, raw))
    subsets = language_subsets(study)
    assert len(subsets) == 2**5 - 1 and all("dan" in s for s in subsets)  # dan and any non-empty rest
    assert len(merge_grid(study)) == 31 * 8 * 3  # subsets x methods (paper five, growup three) x setups
    raw["merging"]["must_include"] = ["nob"]
    with pytest.raises(ConfigError, match=r"'merging.must_include\[0\]' = 'nob': not a study language"):
        load_config(write(tmp_path, raw))


def test_a_language_without_multiblimp_is_scored_on_english_and_says_so(tmp_path, caplog):
    study = load_config(write(tmp_path, with_language("dan", multiblimp=None)))
    assert "multiblimp_dan" not in " ".join(study_tasks(study))
    with caplog.at_level(logging.WARNING):
        tasks = merge_tasks(study, ("dan",))
    assert tasks == ["multiblimp_eng", "growup_blimp_single_error"]
    assert "no MultiBLiMP for dan" in caplog.text and "English benchmarks" in caplog.text
    assert run_tasks(study, "dan-1x") == tasks
    assert merge_tasks(study, ("dan", "swe")) == [
        "multiblimp_swe",
        "multiblimp_eng",
        "growup_blimp_single_error",
    ]
