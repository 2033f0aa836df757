"""The pairs a limited evaluation scores: a seeded sample stratified by the benchmark's phenomenon
columns, drawn from the mirror's files by the code the evaluation runs, the same in any process."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

from growup.errors import GrowupError
from growup.evaluate.harness import study_tasks, task_config, task_manager
from growup.evaluate.sample import allocate, task_sample

LIMIT = 50  # the mini study's evaluation.limit


@pytest.fixture(scope="module")
def task_data(mini_study):
    """Each task of the mini study: its rows as the evaluation reads them, and its strata."""
    manager = task_manager()
    out = {}
    for task in study_tasks(mini_study):
        source = mini_study.evaluation.blimp if "blimp_single" in task else mini_study.evaluation.multiblimp
        out[task] = (task_config(manager, mini_study, task)["custom_dataset"].dataset, source.strata)
    return out


def test_a_sample_of_50_spans_every_phenomenon_of_every_task(task_data, mini_study):
    seed = mini_study.evaluation.sample_seed
    for task, (docs, strata) in task_data.items():
        sample = task_sample(task, docs, LIMIT, strata, seed)
        assert len(sample.ids) == min(LIMIT, len(docs)) == len(set(sample.ids)), task
        assert list(sample.ids) == sorted(sample.ids)  # lm-eval maps doc ids back in file order
        chosen = docs.select(sample.ids)
        for column in strata:
            if column == "UID" and len(set(docs[column])) > LIMIT:  # 67 BLiMP paradigms > 50 pairs
                assert len(set(chosen[column])) == LIMIT, task  # one pair of 50 different paradigms
                continue
            assert set(chosen[column]) == set(docs[column]), (task, column)
        first = docs.select(range(min(LIMIT, len(docs))))
        if len(docs) > 2 * LIMIT:  # the biased sample it replaces: the file's first pairs
            assert len(set(first[strata[0]])) < len(set(docs[strata[0]])) or task.endswith("_eng")


def test_strata_are_allocated_in_proportion_to_their_size(task_data):
    docs, strata = task_data["multiblimp_isl"]
    sample = task_sample("multiblimp_isl", docs, 500, strata, 0)
    got = Counter(docs.select(sample.ids)[strata[0]])
    share = Counter(docs[strata[0]])
    for phenomenon, count in share.items():
        assert abs(got[phenomenon] - 500 * count / len(docs)) <= 4, (phenomenon, got)


def test_the_sample_repeats_in_a_fresh_process_and_moves_with_the_seed(task_data):
    docs, strata = task_data["multiblimp_isl"]
    ids = task_sample("multiblimp_isl", docs, LIMIT, strata, 0).ids
    columns = json.dumps(json.dumps({c: list(docs[c]) for c in strata}))
    code = (
        "import json, datasets\n"
        "from growup.evaluate.sample import task_sample\n"
        f"docs = datasets.Dataset.from_dict(json.loads({columns}))\n"
        f"print(json.dumps(list(task_sample('multiblimp_isl', docs, {LIMIT}, {list(strata)!r}, 0).ids)))\n"
    )
    again = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert tuple(json.loads(again)) == ids
    assert task_sample("multiblimp_isl", docs, LIMIT, strata, 1).ids != ids
    assert task_sample("multiblimp_est", docs, LIMIT, strata, 0).ids != ids  # a stream per task


def test_a_limit_above_the_pair_count_scores_the_whole_task(task_data):
    docs, strata = task_data["multiblimp_fao"]  # 74 pairs
    assert task_sample("multiblimp_fao", docs, 1000, strata, 0).ids == tuple(range(len(docs)))


def test_an_unknown_stratum_column_is_named(task_data):
    docs, _ = task_data["multiblimp_fao"]
    with pytest.raises(GrowupError, match="'paradigm'.*evaluation.<set>.strata"):
        task_sample("multiblimp_fao", docs, 10, ("paradigm",), 0)


def test_allocation_covers_strata_and_keeps_the_total():
    rng = np.random.default_rng(0)
    assert allocate([1000, 10, 1], 50, rng) == [48, 1, 1]
    assert allocate([1000, 10, 1], 50, rng, floors=[2, 3, 1]) == [46, 3, 1]
    assert sum(allocate([5, 5, 5, 5], 3, rng)) == 3 and max(allocate([5, 5, 5, 5], 3, rng)) == 1
    assert allocate([3, 2], 10, rng) == [3, 2]
