"""Faults at the input boundary (issue 16, part B), injected the way an unlucky user meets them:
bad config values (in a copied config file), names and manifest entries that leave their root,
and checkpoint code planted in a fetched repository. Each must end in an error that names the
file or key (one line, exit 2, no traceback) or in a correct refusal; none may pass silently."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from safetensors.torch import save_file

from growup import artifacts, checks, cli
from growup.config import load_config
from growup.errors import ConfigError, PathEscapeError
from growup.integrity import write_checksums
from growup.merge import grid
from growup.models import released
from growup.models.build import init_model, study_configs
from growup.models.checkpoint import save_checkpoint
from growup.models.cloning import hyperclone
from helpers import released_config_dict

REPO = Path(__file__).resolve().parents[1]
MINI = REPO / "config" / "config.yaml"


def mini_raw() -> dict:
    return yaml.safe_load(MINI.read_text(encoding="utf-8"))


def write_config(tmp_path: Path, edit) -> Path:
    """A copy of the mini config with one fault injected by `edit(raw)`."""
    raw = mini_raw()
    edit(raw)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


def _set(*keys, value):
    def edit(raw):
        node = raw
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value

    return edit


def _drop(*keys):
    def edit(raw):
        node = raw
        for key in keys[:-1]:
            node = node[key]
        del node[keys[-1]]

    return edit


def _rename_method(old, new):
    def edit(raw):
        raw["merging"]["methods"][new] = raw["merging"]["methods"].pop(old)

    return edit


# fault -> (edit, key the message must name, value it must name)
CONFIG_FAULTS = {
    "batch not divisible": (_set("training", "global_batch", value=12), "training.global_batch", "12"),
    "batch vs devices": (
        _set("resources", "gpus", value={"base": 3, "language": 1, "multilingual": 1}),
        "training.global_batch",
        "8",
    ),
    "no FineWeb-2 subset": (
        _set("data", "languages", "isl", "subset", value="isl_Cyrl"),
        "data.languages.isl.subset",
        "isl_Cyrl",
    ),
    "no MultiBLiMP task": (
        _set("data", "languages", "fao", "multiblimp", value="zzz"),
        "data.languages.fao.multiblimp",
        "zzz",
    ),
    "MultiBLiMP list": (
        _set("evaluation", "multiblimp_languages", value=["isl", "xxq"]),
        "evaluation.multiblimp_languages[1]",
        "xxq",
    ),
    "unknown merge method": (_rename_method("ties", "tiez"), "merging.methods.tiez", "tiez"),
    "unknown mergekit method of an entry": (
        _set("merging", "methods", "ties", value={"base": True, "method": "tiez"}),
        "merging.methods.ties.method",
        "tiez",
    ),
    "method name escapes": (_rename_method("ties", "../../../x"), "merging.methods", "../../../x"),
    "unknown base run": (_set("merging", "base", "2x", value="english-3x"), "merging.base.2x", "english-3x"),
    "unknown ablation base": (
        _set("merging", "methods", "ties", value={"base": True, "base_runs": {"2x": "seed-2x"}}),
        "merging.methods.ties.base_runs.2x",
        "seed-2x",
    ),
    "bad subset": (_set("merging", "subsets", value=["isl+xyz"]), "merging.subsets[0]", "isl+xyz"),
    "missing required key": (_drop("training", "micro_batch"), "training.micro_batch", "missing"),
    "bad value type": (_set("training", "peak_lr", value="fast"), "training.peak_lr", "fast"),
}


@pytest.mark.parametrize("fault", sorted(CONFIG_FAULTS))
def test_config_fault_is_one_short_line_naming_file_key_and_value(fault, hub_root, tmp_path):
    edit, key, value = CONFIG_FAULTS[fault]
    path = write_config(tmp_path, edit)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    (line,) = str(err.value).splitlines()
    assert line.startswith(f"{path}: config key {key!r}"), line
    assert value in line and ("allowed" in line or "required" in line), line
    assert len(line) < 450, line


def test_a_good_config_passes_and_mergekit_methods_match_its_registry():
    for name in ("config.yaml", "paper.yaml", "released.yaml"):
        load_config(REPO / "config" / name)
    from mergekit.merge_methods import registry

    assert set(checks.mergekit_methods()) == {m.spec.name for m in registry.registered_methods()}
    assert {"isl", "fao", "est", "swe", "fas", "eng"} <= set(checks.multiblimp_codes())


def test_verb_prints_one_error_line_exits_2_and_debug_shows_the_traceback(tmp_path, capsys):
    path = write_config(tmp_path, _set("training", "global_batch", value=12))
    assert cli.main(["budget", "--configfile", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("growup: error: ") and "Traceback" not in err and "training.global_batch" in err
    assert len(err.strip().splitlines()) == 1
    with pytest.raises(ConfigError):
        cli.main(["--debug", "budget", "--configfile", str(path)])


def test_snakemake_dry_run_shows_the_config_error_before_the_dag(tmp_path):
    path = write_config(tmp_path, _rename_method("ties", "tiez"))
    proc = subprocess.run(
        [
            *(str(Path(sys.executable).parent / "snakemake"), "-n", "-s", str(REPO / "Snakefile")),
            *("--directory", str(tmp_path), "--configfile", str(path)),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert f"{path}: config key 'merging.methods.tiez' = 'tiez': not a mergekit merge method" in out
    assert "Building DAG" not in out and len(out.splitlines()) < 10, out


def test_merge_paths_stay_under_their_root(tmp_path):
    root = tmp_path / "merges"
    for merge in (
        grid.Merge("1x", "../../../x", ("isl", "swe")),
        grid.Merge("1x", "ties", ("..", "swe")),
        grid.Merge("../..", "ties", ("isl", "swe")),
    ):
        with pytest.raises(PathEscapeError):
            merge.yaml_path(root)
        with pytest.raises(PathEscapeError):
            merge.model_path(root)
    (root / "1x").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    (root / "1x" / "ties").symlink_to(tmp_path / "elsewhere")  # a link out of the root
    with pytest.raises(PathEscapeError, match="leaves its root"):
        grid.Merge("1x", "ties", ("isl", "swe")).yaml_path(root)
    ok = grid.Merge("1x-cloned", "task_arithmetic-trained_base", ("isl", "swe"))  # the ablation's name
    assert ok.yaml_path(root) == root / "1x-cloned" / "task_arithmetic-trained_base" / "isl+swe.yaml"


@pytest.mark.parametrize("flag", ["--model", "--step"])
def test_eval_names_cannot_leave_the_evals_folder(flag, tmp_path, capsys):
    argv = ["eval", "checkpoint", "--configfile", str(MINI), "--checkpoint", str(tmp_path / "none")]
    names = {"--model": "isl-1x", "--step": "final", flag: "../../x"}
    named = [part for pair in names.items() for part in pair]
    code = cli.main([*argv, "--out-root", str(tmp_path / "evals"), *named])
    err = capsys.readouterr().err
    assert code == 2 and flag in err and "'../../x'" in err and "Traceback" not in err
    assert not (tmp_path / "x").exists() and not (tmp_path.parent / "x").exists()


@pytest.mark.parametrize("entry", ["../outside.txt", "ABSOLUTE", "data/../../outside.txt"])
def test_artifacts_restore_touches_nothing_outside_the_repository(entry, tmp_path, capsys):
    repo = tmp_path / "repo"
    (repo / "data").mkdir(parents=True)
    (repo / "data" / "a.txt").write_text("a")
    outside = tmp_path / "outside.txt"
    outside.write_text("not ours")
    os.utime(outside, ns=(10**18, 10**18))
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    path = str(outside) if entry == "ABSOLUTE" else entry
    files = [
        {"path": "data/a.txt", "rank": 0, "size": 1, "md5": artifacts.md5(repo / "data" / "a.txt")},
        {"path": path, "rank": 1, "size": 8, "md5": artifacts.md5(outside)},
    ]
    manifest = {"version": artifacts.VERSION, "volatile": {}, "files": files}
    (repo / "artifacts.json").write_text(json.dumps(manifest))
    with pytest.raises(PathEscapeError, match="leaves the repository"):
        artifacts.restore(repo)
    assert cli.main(["artifacts", "restore", "--repo", str(repo)]) == 2
    assert repr(path) in capsys.readouterr().err
    assert outside.stat().st_mtime_ns == 10**18  # never re-stamped


MARKER_CODE = """from pathlib import Path
Path({marker!r}).write_text("remote code ran")
"""


def plant_code(folder: Path, marker: Path, reseal: bool = False) -> None:
    """A modified hyperllama.py (and the authors' module names) that leaves a mark when imported.
    `reseal` rewrites the folder's checksums, as a tampered copy could: the code must still not run."""
    for name in ("hyperllama.py", "modeling_hyperllama.py", "configuration_hyperllama.py"):
        (folder / name).write_text(MARKER_CODE.format(marker=str(marker)))
    if reseal:
        write_checksums(folder)


def test_model_fetch_copies_no_code_from_the_repository(tmp_path, monkeypatch):
    study = load_config(MINI)
    one = init_model(study_configs(study)["1x"], 0)
    repo = tmp_path / "hub" / "someone" / "isl-2x"
    repo.mkdir(parents=True)
    clone = hyperclone(one, study.model.clone_factor)
    state = {k: v.contiguous() for k, v in clone.state_dict().items() if k != "lm_head.weight"}
    save_file(state, repo / "model.safetensors", metadata={"format": "pt"})
    config = released_config_dict(clone.config, study.model.clone_factor)
    (repo / "config.json").write_text(json.dumps(config))
    marker = tmp_path / "ran"
    plant_code(repo, marker)
    monkeypatch.setenv("GROWUP_HUB_ROOT", str(tmp_path / "hub"))
    raw = {**study.raw, "study": "released"}
    raw["released"] = {"models": {r: f"someone/{r}" for r in released.released_runs(study)}}
    from growup.config import Study

    final = released.fetch(Study.from_mapping(raw), "isl-2x", tmp_path / "out")
    assert not list((tmp_path / "out").rglob("*.py")), "a repository's Python file was copied"
    from growup.models.checkpoint import load_checkpoint

    load_checkpoint(final, tokenizer=False)  # growup's own HyperLlama class loads it (no tokenizer here)
    assert not marker.exists()


def test_merge_rerun_runs_no_code_shipped_in_a_checkpoint(tmp_path, mini_data):
    """The documented rerun of a merge YAML: a modified hyperllama.py beside the weights (as a
    fetched or tampered checkpoint would carry) is never imported."""
    study = load_config(MINI)
    marker = tmp_path / "ran"
    base = init_model(study_configs(study)["1x"], 0)
    paths = []
    for seed, name in enumerate(("a", "b")):
        model = hyperclone(init_model(study_configs(study)["1x"], seed + 1), 2)
        save_checkpoint(model, tmp_path / name, {"operation": "test"}, tokenizer_src=mini_data / "tokenizer")
        plant_code(tmp_path / name, marker, reseal=True)
        paths.append(name)
    save_checkpoint(
        hyperclone(base, 2), tmp_path / "base", {"operation": "test"}, tokenizer_src=mini_data / "tokenizer"
    )
    plant_code(tmp_path / "base", marker, reseal=True)
    config = {
        "merge_method": "ties",
        "base_model": "base",
        "models": [{"model": p, "parameters": {"weight": 1.0, "density": 0.5}} for p in paths],
        "parameters": {"normalize": True},
        "dtype": "float32",
    }
    (tmp_path / "m.yaml").write_text(grid.to_yaml(config, 0))
    header = (tmp_path / "m.yaml").read_text().splitlines()[1]
    assert "growup merge rerun" in header and "trust-remote-code" not in header
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "HF_HUB_OFFLINE": "1"}
    run = dict(cwd=tmp_path, capture_output=True, text=True, timeout=600, env=env)  # paths from the root
    proc = subprocess.run(grid.rerun_argv("m.yaml", "out", 0), **run)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "out" / "model.safetensors").is_file()
    assert not marker.exists(), "checkpoint code ran during the rerun"
    # the command the YAMLs printed before: the same checkpoints run the planted code
    mergekit_yaml = str(Path(sys.executable).parent / "mergekit-yaml")
    subprocess.run([mergekit_yaml, "m.yaml", "theirs", "--trust-remote-code", "--quiet"], **run)
    assert marker.exists()


def test_merge_rerun_of_a_bad_file_is_one_line(tmp_path, capsys):
    (tmp_path / "bad.yaml").write_text("merge_method: ties\n")
    assert cli.main(["merge", "rerun", str(tmp_path / "bad.yaml"), str(tmp_path / "out")]) == 2
    assert "needs a list 'models'" in capsys.readouterr().err
