"""Job specs: each job sees exactly the config values it declares, and nothing else."""

from __future__ import annotations

import copy
import json

import pytest

from growup.config import SpecView, Study, Withheld, config_overrides, project
from growup.errors import GrowupError
from growup.study import JOBS, job_spec, load_config, resolve_spec, spec_json
from helpers import REPO

MINI = load_config(REPO / "config" / "config.yaml")
PAPER = load_config(REPO / "config" / "paper.yaml")


def changed(study: Study, path: str, value) -> Study:
    raw = copy.deepcopy(dict(study.raw))
    node = raw
    *parents, last = path.split(".")
    for key in parents:
        node = node[key]
    node[last] = value
    return Study.from_mapping(raw)


def test_projection_keeps_only_the_named_values():
    raw = {"a": {"b": 1, "c": {"d": 2, "e": 3}}, "f": {"x": {"y": 1}, "z": {"y": 2}}, "g": 4}
    assert project(raw, ["a.c.d", "g"]) == {"a": {"c": {"d": 2}}, "g": 4}
    assert project(raw, ["f.*.y"]) == {"f": {"x": {"y": 1}, "z": {"y": 2}}}
    assert project(raw, ["f[]"]) == {"f": {"x": None, "z": None}}
    assert project(raw, []) == {}


def test_an_undeclared_value_is_an_error_when_used_and_names_its_key():
    view = SpecView.of({"a": {"b": 1}, "f": {"x": 1, "z": 2}}, ["a.b", "f.x"])
    assert view["a"]["b"] == 1 and view["f"]["x"] == 1
    withheld = view["a"]["c"]
    assert isinstance(withheld, Withheld)
    for use in (bool, int, float, str, list, lambda v: v + 1, lambda v: v == 1, lambda v: v.items()):
        with pytest.raises(GrowupError, match="'a.c' is not in this job's spec"):
            use(withheld)
    with pytest.raises(GrowupError, match="'f' is iterated"):
        list(view["f"])
    with pytest.raises(GrowupError, match="'f.z' is not in this job's spec"):
        _ = "z" in view["f"]
    assert "x" in view["f"] and view["f"].get("x", 5) == 1
    undeclared = view.get("g", 5)  # not a default: a key outside the spec stays withheld
    assert isinstance(undeclared, Withheld)
    with pytest.raises(GrowupError, match="'g' is not in this job's spec"):
        int(undeclared)


def test_a_typed_study_builds_from_a_partial_spec_and_guards_the_rest():
    study = Study.from_spec(job_spec(MINI, "train", run="isl-1x"))
    assert study.training.schedules["isl"] == MINI.training.schedules["isl"]
    assert study.training.peak_lr == MINI.training.peak_lr and study.model == MINI.model
    with pytest.raises(GrowupError, match="training.schedules.ekk.steps"):
        _ = study.training.schedules["ekk"].steps + 1
    with pytest.raises(GrowupError, match="evaluation"):
        bool(study.evaluation.limit)
    with pytest.raises(GrowupError, match="'data.languages' is iterated"):
        _ = study.data.language_codes


@pytest.mark.parametrize("study", [MINI, PAPER], ids=["mini", "paper"])
def test_every_job_of_the_grid_has_a_spec_that_builds(study):
    from growup.merge.grid import merge_grid
    from growup.study import trained_runs

    args = {
        "data fetch": [{"source": s} for s in ("english", "code", *study.data.language_codes)],
        "model fetch": [],
        "train": [{"run": r} for r in trained_runs(study)],
        "eval run": [{"run": r} for r in trained_runs(study) if r != "seed"],
        "eval merge": [
            {"setup": m.setup, "method": m.method, "subset": m.subset_name} for m in merge_grid(study)
        ],
        "merge run": [
            {"setup": m.setup, "method": m.method, "subset": m.subset_name} for m in merge_grid(study)
        ],
        "report figure": [{"name": "merge_heatmaps"}, {"name": "merge_leaderboard"}],
    }
    for job in JOBS:
        for job_args in args.get(job, [{}]):
            spec = json.loads(spec_json(study, job, **job_args))
            Study.from_spec(spec)  # raises if the spec cannot build a study


def test_a_value_changes_the_specs_of_exactly_the_jobs_that_read_it():
    isl = ("train", {"run": "isl-1x"})
    ekk = ("train", {"run": "ekk-1x"})
    claims, figure = ("report claims", {}), ("report figure", {"name": "data_efficiency"})
    pack, fetch_isl = ("data pack", {}), ("data fetch", {"source": "isl"})
    jobs = [isl, ekk, claims, figure, pack, fetch_isl]

    def differs(study: Study) -> set[str]:
        return {
            f"{job} {args}"
            for job, args in jobs
            if spec_json(MINI, job, **args) != spec_json(study, job, **args)
        }

    assert differs(changed(MINI, "training.schedules.isl.steps", 30)) == {f"train {isl[1]}"}
    assert differs(changed(MINI, "training.peak_lr", 1e-3)) == {f"train {isl[1]}", f"train {ekk[1]}"}
    assert differs(changed(MINI, "report.method_spread", 0.5)) == {"report claims {}"}
    board, drawn = ("report leaderboard", {}), ("report figure", {"name": "merge_leaderboard"})
    jobs += [board, drawn]
    assert differs(changed(MINI, "report.bootstrap_seed", 5)) == {"report claims {}", "report leaderboard {}"}
    assert differs(changed(MINI, "report.confidence", 0.9)) == {
        "report claims {}",
        "report leaderboard {}",
        f"report figure {drawn[1]}",
    }
    assert differs(changed(MINI, "data.languages.isl.shuffle", False)) == {f"data fetch {fetch_isl[1]}"}
    assert differs(changed(MINI, "training.sequence_length", 128)) == {
        f"train {isl[1]}",
        f"train {ekk[1]}",
        "data pack {}",
    }


def test_a_spec_for_another_job_is_refused():
    spec = spec_json(MINI, "train", run="isl-1x")
    assert resolve_spec(spec, None, "train", run="isl-1x")["args"] == {"run": "isl-1x"}
    with pytest.raises(GrowupError, match="--spec is for job"):
        resolve_spec(spec, None, "train", run="ekk-1x")
    with pytest.raises(GrowupError, match="--configfile"):
        resolve_spec(None, None, "train", run="isl-1x")


def test_config_overrides_are_typed_as_in_a_file():
    given = {"report": {"method_spread": "0.5", "bootstrap_seed": "3"}, "evaluation": {"limit": "null"}}
    assert config_overrides(given) == {
        "report": {"method_spread": 0.5, "bootstrap_seed": 3},
        "evaluation": {"limit": None},
    }
