"""Fault injection on a built mini study (issue 16, part A): damaged shards, benchmark files,
checkpoints and training states. Each fault must end in an error that names the file and its fix,
or in a changed result: never a silently different result, never a library traceback.

Every test copies what it damages out of the session's `study_repo` into its own tmp_path. The
study's checkpoints are re-saved by growup's writer when they predate checksums (a study built by
older code), so the tests exercise what current growup writes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from growup.config import Study, load_config
from growup.errors import GrowupError
from growup.evaluate.sweep import evaluate_checkpoint
from growup.integrity import CHECKSUMS
from growup.models.checkpoint import load_checkpoint, read_card, save_checkpoint

pytestmark = pytest.mark.slow

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


def test_truncated_shard_names_the_file_not_numpy(study, study_repo, tmp_path):
    data = packed_copy(study_repo, tmp_path / "data")
    init = sealed(study_repo, PARENT, tmp_path / "init")
    shard = data / "packed" / "isl" / "shard-00000.bin"
    os.truncate(shard, shard.stat().st_size // 2)
    with pytest.raises(GrowupError, match=r"shard-00000\.bin is \d+ bytes, .*manifest\.json records"):
        train_isl(study, init, tmp_path / "work", data)


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


# 2. benchmark data ---------------------------------------------------------------------------


@pytest.fixture
def mirror(hub_root, tmp_path, monkeypatch) -> Path:
    """A private copy of the MultiBLiMP mirror, in force as the Hub root."""
    if hub_root is None:
        pytest.skip("benchmark edits need a local mirror (GROWUP_HUB_ROOT)")
    root = tmp_path / "mirror"
    shutil.copytree(hub_root / "jumelet" / "multiblimp", root / "jumelet" / "multiblimp")
    monkeypatch.setenv("GROWUP_HUB_ROOT", str(root))
    return root / "jumelet" / "multiblimp" / "isl" / "data.tsv"


def edit_line(path: Path, number: int, change) -> None:
    lines = path.read_text(encoding="utf-8").split("\n")
    lines[number - 1] = change(lines[number - 1])
    path.write_text("\n".join(lines), encoding="utf-8")


def test_edited_benchmark_pair_changes_the_results(study, study_repo, mirror, tmp_path):
    ckpt = sealed(study_repo, RUN, tmp_path / "ckpt")
    before = evaluate(study, ckpt, tmp_path / "before")
    header = mirror.read_text(encoding="utf-8").split("\n", 1)[0].split("\t")
    wrong = header.index("wrong_sen")

    def swap(line: str) -> str:
        fields = line.split("\t")
        fields[wrong] = " ".join(reversed(fields[wrong].split()))
        return "\t".join(fields)

    edit_line(mirror, 2, swap)  # the first pair's ungrammatical sentence; same process, warm caches
    after = evaluate(study, ckpt, tmp_path / "after")
    first_before, first_after = samples(before)[0], samples(after)[0]
    assert first_before["loglikelihoods"][0] == first_after["loglikelihoods"][0]
    assert first_before["loglikelihoods"][1] != first_after["loglikelihoods"][1]
    assert samples(before)[1:] == samples(after)[1:]
    config = lambda out: json.loads((out / f"{TASK}.json").read_text())["configs"][TASK]  # noqa: E731
    assert config(before)["custom_dataset"] != config(after)["custom_dataset"]  # the content's sha256


def test_malformed_benchmark_row_is_named(study, study_repo, mirror, tmp_path):
    ckpt = sealed(study_repo, RUN, tmp_path / "ckpt")
    edit_line(mirror, 4, lambda line: "\t".join(line.split("\t")[:5]))  # a row cut short
    with pytest.raises(GrowupError, match=r"isl/data\.tsv: row 3, line 4 has no text in column"):
        evaluate(study, ckpt, tmp_path / "evals")


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


def test_overwritten_weights_stop_evaluation(study, study_repo, tmp_path):
    ckpt = sealed(study_repo, RUN, tmp_path / "ckpt")
    overwrite_tensor_bytes(ckpt / "model.safetensors")
    with pytest.raises(GrowupError, match=r"model\.safetensors is corrupt: sha256"):
        evaluate(study, ckpt, tmp_path / "evals")
    assert not (tmp_path / "evals").exists()


def test_truncated_weights_name_the_file(study, study_repo, tmp_path):
    ckpt = sealed(study_repo, RUN, tmp_path / "ckpt")
    os.truncate(ckpt / "model.safetensors", 1000)
    with pytest.raises(GrowupError, match=r"model\.safetensors is corrupt"):
        load_checkpoint(ckpt)


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


def test_checkpoint_without_tokenizer_is_named(study, study_repo, tmp_path):
    src = sealed(study_repo, RUN, tmp_path / "src")
    model = load_checkpoint(src)
    bare = save_checkpoint(model, tmp_path / "bare", read_card(src))  # no tokenizer_src
    with pytest.raises(GrowupError, match=r"has no tokenizer \(tokenizer\.json or tokenizer\.model"):
        evaluate(study, bare, tmp_path / "evals")


def test_training_from_an_init_without_tokenizer_writes_nothing(study, study_repo, tmp_path):
    data = packed_copy(study_repo, tmp_path / "data")
    src = sealed(study_repo, PARENT, tmp_path / "src")
    bare = save_checkpoint(load_checkpoint(src), tmp_path / "bare", read_card(src))
    with pytest.raises(GrowupError, match="has no tokenizer"):
        train_isl(study, bare, tmp_path / "work", data)
    assert not list((tmp_path / "work").glob("step-*"))


def test_checkpoint_without_checksums_says_rebuild(study, study_repo, tmp_path):
    ckpt = sealed(study_repo, RUN, tmp_path / "checkpoints" / RUN / "final")
    (ckpt / CHECKSUMS).unlink()
    with pytest.raises(GrowupError, match=rf"has no {CHECKSUMS}.*--forcerun checkpoints/{RUN}"):
        evaluate(study, ckpt, tmp_path / "evals")


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


def test_truncated_state_stops_resume(study, one_step):
    init, data, work = one_step
    state = work / "state" / "trainer.pt"
    os.truncate(state, state.stat().st_size // 2)
    with pytest.raises(GrowupError, match=rf"trainer\.pt is corrupt.*delete '.*state/{RUN}/state'"):
        train_isl(study, init, work, data, steps=2)


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
