"""Fault injection (issue 16), the way an unlucky user meets each fault.

Part A, on a built mini study (marked slow): damaged shards, benchmark files, checkpoints and
training states. Every such test copies what it damages out of the session's `study_repo` into its
own tmp_path; the study's checkpoints are re-saved by growup's writer when they predate checksums
(a study built by older code), so the tests exercise what current growup writes.

Part B, at the input boundary: bad config values (in a copied config file), names and manifest
entries that leave their root, and checkpoint code planted in a fetched repository.

Each fault must end in an error that names the file or key (one line, exit 2, no traceback), in
a correct refusal, or in a changed result: never a silently different result.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import save_file

from growup import artifacts, checks, cli
from growup.config import Study
from growup.errors import ConfigError, GrowupError, PathEscapeError
from growup.evaluate.sweep import evaluate_checkpoint
from growup.fetch import run as released
from growup.integrity import CHECKSUMS, write_checksums
from growup.merge import grid
from growup.models.build import init_model, study_configs
from growup.models.checkpoint import load_checkpoint, read_card, save_checkpoint
from growup.models.cloning import hyperclone
from growup.study import load_config, released_runs
from helpers import released_config_dict, skip_or_fail

GROWUP = str(Path(sys.executable).parent / "growup")
TASK = "multiblimp_isl"
RUN, PARENT = "isl-1x", "english-1x"


@pytest.fixture(scope="module")
def study(study_repo: Path) -> Study:
    return load_config(study_repo / "config" / "config.yaml")


@pytest.fixture(autouse=True)
def _own_verdicts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GROWUP_VERIFY_CACHE", str(tmp_path / "verdicts"))


def sealed(study_repo: Path, run: str, dest: Path) -> Path:
    """checkpoints/<run>/final as current growup writes it (with its checksums), at `dest`."""
    src = study_repo / "checkpoints" / run / "final"
    if (src / CHECKSUMS).is_file():
        shutil.copytree(src, dest)
    else:
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(str(src), local_files_only=True)
        save_checkpoint(model, dest, read_card(src), tokenizer_src=src)
    return dest


def packed_copy(study_repo: Path, dest: Path) -> Path:
    """A data folder holding a copy of the study's packed datasets and budgets."""
    shutil.copytree(study_repo / "data" / "packed", dest / "packed")
    for budget in (study_repo / "data").glob("*.json"):
        shutil.copy2(budget, dest / budget.name)
    return dest


def evaluate(study: Study, checkpoint: Path, out: Path, limit: int = 6) -> Path:
    return evaluate_checkpoint(study, checkpoint, RUN, "final", out, tasks=[TASK], limit=limit)


def samples(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / f"{TASK}.samples.jsonl").read_text().splitlines()]


def train_isl(study: Study, init: Path, work: Path, data: Path, steps: int = 1) -> Path:
    from growup.train.loop import train

    return train(study, RUN, init, work, data_dir=data, max_steps=steps, progress=False)


# 1. packed shards ----------------------------------------------------------------------------


@pytest.mark.slow
def test_zeroed_shard_stops_training_naming_the_shard(study, study_repo, tmp_path):
    data = packed_copy(study_repo, tmp_path / "data")
    init = sealed(study_repo, PARENT, tmp_path / "init")
    shard = data / "packed" / "isl" / "shard-00000.bin"
    size = shard.stat().st_size
    with shard.open("r+b") as fh:  # 16 KiB zeroed, same size (or the whole shard if smaller)
        fh.seek(max(0, size // 2 - 8192))
        fh.write(bytes(min(16384, size)))
    assert shard.stat().st_size == size
    with pytest.raises(
        GrowupError, match=r"shard-00000\.bin is corrupt.*snakemake --cores all --forcerun data/packed/isl"
    ):
        train_isl(study, init, tmp_path / "work", data)
    assert not (tmp_path / "work" / "step-1").exists()


@pytest.mark.slow
def test_truncated_shard_names_the_file_not_numpy(study, study_repo, tmp_path):
    data = packed_copy(study_repo, tmp_path / "data")
    init = sealed(study_repo, PARENT, tmp_path / "init")
    shard = data / "packed" / "isl" / "shard-00000.bin"
    os.truncate(shard, shard.stat().st_size // 2)
    with pytest.raises(GrowupError, match=r"shard-00000\.bin is \d+ bytes, .*manifest\.json records"):
        train_isl(study, init, tmp_path / "work", data)


@pytest.mark.slow
def test_corruption_after_a_cached_verdict_is_still_caught(study_repo, tmp_path):
    from growup.data.packing import PackedDataset

    data = packed_copy(study_repo, tmp_path / "data")
    PackedDataset.open(data / "packed" / "isl")  # verified and remembered
    shard = data / "packed" / "isl" / "shard-00000.bin"
    st = shard.stat()
    with shard.open("r+b") as fh:
        fh.write(b"\0" * 64)
    os.utime(shard, ns=(st.st_atime_ns, st.st_mtime_ns))  # the old mtime: only the ctime tells
    with pytest.raises(GrowupError, match=r"shard-00000\.bin is corrupt"):
        PackedDataset.open(data / "packed" / "isl")


@pytest.mark.slow
def test_training_cli_prints_one_line_for_a_damaged_shard(study_repo, tmp_path):
    data = packed_copy(study_repo, tmp_path / "data")
    init = sealed(study_repo, PARENT, tmp_path / "init")
    shard = data / "packed" / "isl" / "shard-00000.bin"
    with shard.open("r+b") as fh:
        fh.write(b"\xff" * 16384)
    cmd = [GROWUP, "train", "--configfile", str(study_repo / "config" / "config.yaml"), "--run", RUN]
    cmd += ["--init", str(init), "--out", str(tmp_path / "out"), "--data-dir", str(data), "--max-steps", "1"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=os.environ.copy())
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert str(shard) in proc.stderr and "snakemake" in proc.stderr


def test_edited_tokenizer_stops_packing_and_model_init(mini_study, mini_data, tmp_path):
    """data/tokenizer is sealed when written: one changed byte of tokenizer.json stops every
    reader (packing, model init) with the file and its rebuild target, not a silent retokenization."""
    from growup.data import prepare
    from growup.models.build import tokenizer_vocab_size

    tok = tmp_path / "data" / "tokenizer"
    shutil.copytree(mini_data / "tokenizer", tok)
    tokenizer_vocab_size(tok)  # intact: accepted
    text = (tok / "tokenizer.json").read_text(encoding="utf-8")
    (tok / "tokenizer.json").write_text(text.replace('"a"', '"q"', 1), encoding="utf-8")
    for read in (
        lambda: tokenizer_vocab_size(tok),
        lambda: prepare.pack_dataset(mini_study, mini_data / "raw" / "isl", tok, tmp_path / "packed"),
    ):
        with pytest.raises(GrowupError, match=r"tokenizer\.json is corrupt.*--forcerun data/tokenizer"):
            read()
    assert not (tmp_path / "packed").exists()


# 2. benchmark data ---------------------------------------------------------------------------


@pytest.fixture
def mirror(hub_root, tmp_path, monkeypatch) -> Path:
    """A private copy of the MultiBLiMP mirror, in force as the Hub root."""
    if hub_root is None:
        skip_or_fail("benchmark edits need a local mirror (GROWUP_HUB_ROOT)")
    root = tmp_path / "mirror"
    shutil.copytree(hub_root / "jumelet" / "multiblimp", root / "jumelet" / "multiblimp")
    monkeypatch.setenv("GROWUP_HUB_ROOT", str(root))
    return root / "jumelet" / "multiblimp" / "isl" / "data.tsv"


def edit_line(path: Path, number: int, change) -> None:
    lines = path.read_text(encoding="utf-8").split("\n")
    lines[number - 1] = change(lines[number - 1])
    path.write_text("\n".join(lines), encoding="utf-8")


@pytest.mark.slow
def test_edited_benchmark_pair_changes_the_results(study, study_repo, mirror, tmp_path):
    ckpt = sealed(study_repo, RUN, tmp_path / "ckpt")
    before = evaluate(study, ckpt, tmp_path / "before")
    header = mirror.read_text(encoding="utf-8").split("\n", 1)[0].split("\t")
    wrong = header.index("wrong_sen")

    def swap(line: str) -> str:
        fields = line.split("\t")
        fields[wrong] = " ".join(reversed(fields[wrong].split()))
        return "\t".join(fields)

    # the first scored pair's ungrammatical sentence (doc_id: its row in the file, after the header;
    # evaluation.limit scores a stratified sample); same process, warm caches
    edit_line(mirror, samples(before)[0]["doc_id"] + 2, swap)
    after = evaluate(study, ckpt, tmp_path / "after")
    first_before, first_after = samples(before)[0], samples(after)[0]
    assert first_before["loglikelihoods"][0] == first_after["loglikelihoods"][0]
    assert first_before["loglikelihoods"][1] != first_after["loglikelihoods"][1]
    assert samples(before)[1:] == samples(after)[1:]
    config = lambda out: json.loads((out / f"{TASK}.json").read_text())["configs"][TASK]  # noqa: E731
    assert config(before)["custom_dataset"] != config(after)["custom_dataset"]  # the content's sha256


@pytest.mark.slow
def test_malformed_benchmark_row_is_named(study, study_repo, mirror, tmp_path):
    ckpt = sealed(study_repo, RUN, tmp_path / "ckpt")
    edit_line(mirror, 4, lambda line: "\t".join(line.split("\t")[:5]))  # a row cut short
    with pytest.raises(GrowupError, match=r"isl/data\.tsv: row 3, line 4 has no text in column"):
        evaluate(study, ckpt, tmp_path / "evals")


@pytest.mark.slow
def test_extra_field_in_benchmark_row_is_named(study, study_repo, mirror, tmp_path):
    ckpt = sealed(study_repo, RUN, tmp_path / "ckpt")
    edit_line(mirror, 5, lambda line: line + "\textra")
    with pytest.raises(GrowupError, match=r"isl/data\.tsv cannot be parsed: .*line 5"):
        evaluate(study, ckpt, tmp_path / "evals")


# 3. checkpoints ------------------------------------------------------------------------------


def overwrite_tensor_bytes(weights: Path) -> None:
    """Garble bytes inside the tensor data (after the safetensors header), same size."""
    size = weights.stat().st_size
    with weights.open("r+b") as fh:
        header = int.from_bytes(fh.read(8), "little")
        fh.seek(8 + header + (size - 8 - header) // 2)
        fh.write(b"\xff" * 4096)
    assert weights.stat().st_size == size


@pytest.mark.slow
def test_overwritten_weights_stop_evaluation(study, study_repo, tmp_path):
    ckpt = sealed(study_repo, RUN, tmp_path / "ckpt")
    overwrite_tensor_bytes(ckpt / "model.safetensors")
    with pytest.raises(GrowupError, match=r"model\.safetensors is corrupt: sha256"):
        evaluate(study, ckpt, tmp_path / "evals")
    assert not (tmp_path / "evals").exists()


@pytest.mark.slow
def test_truncated_weights_name_the_file(study, study_repo, tmp_path):
    ckpt = sealed(study_repo, RUN, tmp_path / "ckpt")
    os.truncate(ckpt / "model.safetensors", 1000)
    with pytest.raises(GrowupError, match=r"model\.safetensors is corrupt"):
        load_checkpoint(ckpt)


@pytest.mark.slow
def test_non_finite_log_likelihoods_are_an_error(study, study_repo, tmp_path):
    """Weights that hash correctly but hold infinities (saved so by growup itself)."""
    src = sealed(study_repo, RUN, tmp_path / "src")
    model = load_checkpoint(src)
    with torch.no_grad():
        model.lm_head.weight[0, 0] = float("inf")
        model.lm_head.weight[1:, :] = float("nan")
    bad = save_checkpoint(model, tmp_path / "bad", read_card(src), tokenizer_src=src)
    with pytest.raises(GrowupError, match=r"log-likelihoods \[.*\]: the weights are damaged"):
        evaluate(study, bad, tmp_path / "evals")


@pytest.mark.slow
def test_checkpoint_without_tokenizer_is_named(study, study_repo, tmp_path):
    src = sealed(study_repo, RUN, tmp_path / "src")
    model = load_checkpoint(src)
    bare = save_checkpoint(model, tmp_path / "bare", read_card(src))  # no tokenizer_src
    with pytest.raises(GrowupError, match=r"has no tokenizer \(tokenizer\.json or tokenizer\.model"):
        evaluate(study, bare, tmp_path / "evals")


@pytest.mark.slow
def test_training_from_an_init_without_tokenizer_writes_nothing(study, study_repo, tmp_path):
    data = packed_copy(study_repo, tmp_path / "data")
    src = sealed(study_repo, PARENT, tmp_path / "src")
    bare = save_checkpoint(load_checkpoint(src), tmp_path / "bare", read_card(src))
    with pytest.raises(GrowupError, match="has no tokenizer"):
        train_isl(study, bare, tmp_path / "work", data)
    assert not list((tmp_path / "work").glob("step-*"))


@pytest.mark.slow
def test_checkpoint_without_checksums_says_rebuild(study, study_repo, tmp_path):
    ckpt = sealed(study_repo, RUN, tmp_path / "checkpoints" / RUN / "final")
    (ckpt / CHECKSUMS).unlink()
    with pytest.raises(GrowupError, match=rf"has no {CHECKSUMS}.*--forcerun checkpoints/{RUN}"):
        evaluate(study, ckpt, tmp_path / "evals")


@pytest.mark.slow
def test_damaged_merge_input_is_not_merged(study_repo, tmp_path):
    from growup.merge.run import run_merge

    sealed(study_repo, RUN, tmp_path / "a")
    b = sealed(study_repo, "swe-1x", tmp_path / "b")
    overwrite_tensor_bytes(b / "model.safetensors")
    config = {"merge_method": "linear", "models": [{"model": "a", "parameters": {"weight": 1.0}},
                                                   {"model": "b", "parameters": {"weight": 1.0}}],
              "dtype": "float32"}  # fmt: skip
    with pytest.raises(GrowupError, match=r"b/model\.safetensors is corrupt"):
        run_merge(config, tmp_path / "merged", root=tmp_path)
    assert not (tmp_path / "merged").exists()


@pytest.mark.slow
def test_damaged_clone_source_is_not_cloned(study_repo, tmp_path):
    ckpt = sealed(study_repo, RUN, tmp_path / "ckpt")
    (ckpt / "config.json").write_text((ckpt / "config.json").read_text().replace("1e-05", "0.5"))
    proc = subprocess.run(
        [GROWUP, "model", "clone", "--checkpoint", str(ckpt), "--out", str(tmp_path / "clone")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "config.json is corrupt" in proc.stderr
    assert not (tmp_path / "clone").exists()


# 3/4. training state -------------------------------------------------------------------------


@pytest.fixture
def one_step(study, study_repo, tmp_path) -> tuple[Path, Path, Path]:
    """(init, data, work): a run trained one step, its resumable state in work/state."""
    data = packed_copy(study_repo, tmp_path / "data")
    init = sealed(study_repo, PARENT, tmp_path / "init")
    work = tmp_path / "state" / RUN
    train_isl(study, init, work, data, steps=1)
    assert (work / "state" / "trainer.pt").is_file() and (work / "state" / CHECKSUMS).is_file()
    return init, data, work


@pytest.mark.slow
def test_truncated_state_stops_resume(study, one_step):
    init, data, work = one_step
    state = work / "state" / "trainer.pt"
    os.truncate(state, state.stat().st_size // 2)
    with pytest.raises(GrowupError, match=rf"trainer\.pt is corrupt.*delete '.*state/{RUN}/state'"):
        train_isl(study, init, work, data, steps=2)


@pytest.mark.slow
def test_state_with_pickled_code_is_refused(study, one_step, tmp_path):
    """A state whose pickle would run code (with matching checksums) loads as data or not at all."""
    from growup.integrity import write_checksums

    init, data, work = one_step
    marker = tmp_path / "ran"
    torch.save(
        {"model": Payload(str(marker)), "optimizer": {}, "step": 1, "rng": {}}, work / "state" / "trainer.pt"
    )
    write_checksums(work / "state")
    with pytest.raises(GrowupError, match=r"trainer\.pt cannot be loaded as plain tensors"):
        train_isl(study, init, work, data, steps=2)
    assert not marker.exists()


class Payload:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


def test_a_merge_with_non_finite_weights_is_not_written(tmp_path):
    """mergekit can divide by a zero-norm task vector: such a merge stops at merge time, naming
    the method and the tensors, instead of failing later as NaN log-likelihoods."""
    from safetensors.torch import save_file

    from growup.merge.run import check_finite

    save_file({"a": torch.ones(2), "b": torch.tensor([1.0, float("nan")])}, tmp_path / "model.safetensors")
    with pytest.raises(GrowupError, match=r"'multislerp' gave non-finite weights in 1 tensor.*\['b'\]"):
        check_finite(tmp_path, "multislerp")
    save_file({"a": torch.ones(2)}, tmp_path / "model.safetensors")
    check_finite(tmp_path, "multislerp")


# B. inputs, paths and code ----------------------------------------------------------------------

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
    # mergekit's task_arithmetic declares density but never sparsifies: the authors' density 0.5 did nothing
    "density without sparsification": (
        _set(
            "merging",
            "methods",
            "task_arithmetic",
            value={"base": True, "model_parameters": {"density": 0.5}},
        ),
        "merging.methods.task_arithmetic.model_parameters.density",
        "0.5",
    ),
    "undeclared mergekit parameter": (
        _set("merging", "methods", "multislerp", value={"base": False, "parameters": {"normalize": True}}),
        "merging.methods.multislerp.parameters.normalize",
        "True",
    ),
    "missing required key": (_drop("training", "micro_batch"), "training.micro_batch", "missing"),
    "bad value type": (_set("training", "peak_lr", value="fast"), "training.peak_lr", "fast"),
    "negative margin": (_set("report", "margin", value=-1.0), "report.margin", "-1.0"),
    "no replicate seeds": (_set("training", "replicates", value=[]), "training.replicates", "[]"),
    "a seed twice": (_set("training", "replicates", value=[0, 3, 3]), "training.replicates", "[0, 3, 3]"),
    "replicates without the seed": (
        _set("training", "replicates", value=[1, 2]),
        "training.replicates",
        "[1, 2]",
    ),
}


@pytest.mark.parametrize("fault", sorted(CONFIG_FAULTS))
def test_config_fault_is_one_short_line_naming_file_key_and_value(fault, hub_root, tmp_path):
    edit, key, value = CONFIG_FAULTS[fault]
    path = write_config(tmp_path, edit)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    (line,) = str(err.value).splitlines()
    # `<file>: config key '<key>' = <value>: <what is wrong>; allowed: <what is>`, each in its place
    # (a value found anywhere else in the line, say in the temporary path, does not count)
    head = f"{path}: config key {key!r}"
    assert line.startswith(head), line
    rest = line[len(head) :]
    if value == "missing":
        assert re.fullmatch(r": missing; a required key \(see .+\)", rest), line
    else:
        shown = re.match(r" = ('?)(.+?)\1: (.+)$", rest)
        assert shown and shown[2] == value, line
        assert re.search(r"(^|; )allowed( type)?: \S", shown[3]), line
    assert len(line) < 450, line


def test_a_good_config_passes_and_mergekit_methods_match_its_registry():
    for name in ("config.yaml", "paper.yaml", "released.yaml"):
        load_config(REPO / "config" / name)
    from mergekit.merge_methods import registry

    from growup.mergekit_registry import register_plugins

    register_plugins()  # growup's own methods, as a merge registers them
    assert set(checks.mergekit_methods()) == {m.spec.name for m in registry.registered_methods()}
    assert {"tsv_m", "iso_c", "iso_cts", "ties"} <= set(checks.mergekit_methods())
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
    raw["released"] = {"models": {r: f"someone/{r}" for r in released_runs(study)}}
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
