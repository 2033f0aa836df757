"""growup.integrity and the checks built on it, on small synthetic files (fast; the faults on a
built study are in test_faults.py)."""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import growup.integrity as integrity
from growup.errors import GrowupError
from growup.evaluate.harness import check_finite, check_pairs, choice_columns
from growup.integrity import CHECKSUMS, rebuild_hint, verify_folder, write_checksums
from growup.train.state import load_state, rng_state, save_state, set_rng_state


@pytest.fixture(autouse=True)
def _own_verdicts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(integrity.ENV_CACHE, str(tmp_path / "verdicts"))
    return tmp_path / "verdicts"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    out = tmp_path / "checkpoints" / "isl-1x" / "step-10"
    (out / "sub").mkdir(parents=True)
    (out / "model.safetensors").write_bytes(os.urandom(4096))
    (out / "config.json").write_text("{}")
    (out / "sub" / "tokenizer.json").write_text("{}")
    write_checksums(out)
    return out


def test_checksums_are_sha256sum_format_and_verify(folder):
    lines = (folder / CHECKSUMS).read_text().splitlines()
    assert [line.split("  ", 1)[1] for line in lines] == [
        "config.json",
        "model.safetensors",
        "sub/tokenizer.json",
    ]
    # the coreutils tool accepts the file as written, and the recorded hashes are hashlib's
    check = subprocess.run(
        ["sha256sum", "--check", "--strict", CHECKSUMS], cwd=folder, capture_output=True, text=True
    )
    assert check.returncode == 0 and check.stdout.count(": OK") == 3, check.stdout + check.stderr
    recorded = verify_folder(folder, {"weights": ("model.safetensors",)})
    for name in ("config.json", "model.safetensors", "sub/tokenizer.json"):
        assert recorded[name] == hashlib.sha256((folder / name).read_bytes()).hexdigest(), name
    (folder / "config.json").write_text("{ }")  # and it rejects a changed file, as growup does
    assert subprocess.run(["sha256sum", "--check", "--quiet", CHECKSUMS], cwd=folder).returncode != 0


def test_same_size_corruption_names_file_and_target(folder):
    with (folder / "model.safetensors").open("r+b") as fh:
        fh.seek(100)
        fh.write(b"\0" * 16)
    with pytest.raises(GrowupError, match=r"model\.safetensors is corrupt.*--forcerun checkpoints/isl-1x`"):
        verify_folder(folder)


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda f: (f / CHECKSUMS).unlink(), "has no checksums.sha256"),
        (lambda f: (f / "config.json").unlink(), r"config\.json is missing"),
        (lambda f: (f / "extra.safetensors").write_bytes(b"x"), r"extra\.safetensors is not in"),
        (lambda f: (f / CHECKSUMS).write_text("abc  config.json\n"), "line 1 is not"),
        (lambda f: (f / CHECKSUMS).write_text(f"{'0' * 64}  ../../etc/passwd\n"), "line 1 is not"),
    ],
)
def test_folder_faults(folder, damage, message):
    damage(folder)
    with pytest.raises(GrowupError, match=message):
        verify_folder(folder)


def test_required_files(folder):
    with pytest.raises(GrowupError, match=r"has no tokenizer \(tokenizer\.json or tokenizer\.model"):
        verify_folder(folder, {"tokenizer": ("tokenizer.json", "tokenizer.model")})


def test_a_match_is_hashed_once_and_an_edit_again(folder, monkeypatch):
    calls: list[str] = []
    real = integrity.sha256_file
    monkeypatch.setattr(integrity, "sha256_file", lambda p: calls.append(Path(p).name) or real(p))
    verify_folder(folder)
    assert len(calls) == 3
    verify_folder(folder)
    assert len(calls) == 3  # remembered
    weights = folder / "model.safetensors"
    st = weights.stat()
    with weights.open("r+b") as fh:
        fh.write(b"\1" * 8)
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns))  # same size and mtime: the ctime moved
    with pytest.raises(GrowupError, match="is corrupt"):
        verify_folder(folder)
    assert calls[3:] == ["model.safetensors"]


def test_cache_off_hashes_every_time(folder, monkeypatch):
    monkeypatch.setenv(integrity.ENV_CACHE, "off")
    calls: list[str] = []
    real = integrity.sha256_file
    monkeypatch.setattr(integrity, "sha256_file", lambda p: calls.append(p) or real(p))
    verify_folder(folder)
    verify_folder(folder)
    assert len(calls) == 6


@pytest.mark.parametrize(
    "path, hint",
    [
        ("repo/data/packed/isl/shard-00001.bin", "--forcerun data/packed/isl`"),
        ("repo/checkpoints/isl-1x/step-10/model.safetensors", "--forcerun checkpoints/isl-1x`"),
        ("repo/merges/2x/ties/isl+swe/model.safetensors", "--forcerun merges/2x/ties/isl+swe`"),
        ("repo/state/isl-1x/state/trainer.pt", "delete 'repo/state/isl-1x/state'"),
        ("elsewhere/model.safetensors", "rebuild or re-download it"),
    ],
)
def test_rebuild_hint(path, hint, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert hint.replace("'repo", f"'{tmp_path}/repo") in rebuild_hint(path)


def test_state_round_trip_loads_as_plain_data(tmp_path):
    model = {"w": torch.randn(3, 3)}
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.randn(2))]).state_dict()
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    save_state(tmp_path / "state", model, optimizer, 7, {"tokens": 70})
    expected = (random.random(), np.random.rand(), torch.rand(1))
    state = load_state(tmp_path / "state")  # weights_only=True
    assert state["step"] == 7 and torch.equal(state["model"]["w"], model["w"])
    set_rng_state(state["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1)) == expected
    assert (tmp_path / "state" / CHECKSUMS).is_file()


def test_state_without_checksums_is_refused(tmp_path):
    save_state(tmp_path / "state", {}, {}, 1, {})
    (tmp_path / "state" / CHECKSUMS).unlink()
    with pytest.raises(GrowupError, match="training state .* has no checksums.sha256"):
        load_state(tmp_path / "state")
    # the numpy state is stored as plain values (no ndarray), which weights_only loading accepts
    kind, keys, *rest = rng_state()["numpy"]
    assert kind == "MT19937" and type(keys) is list and all(type(v) in (int, float) for v in rest)


def test_choice_columns():
    assert choice_columns({"doc_to_choice": "{{[sen,wrong_sen]}}"}) == ("sen", "wrong_sen")
    assert choice_columns({"doc_to_choice": "{{[sentence_good, sentence_bad]}}"}) == (
        "sentence_good",
        "sentence_bad",
    )
    with pytest.raises(GrowupError, match="is not"):
        choice_columns({"task": "t", "doc_to_choice": "{{choices}}"})


def test_check_pairs_names_row_and_line(tmp_path):
    path = tmp_path / "data.tsv"
    frame = pd.DataFrame({"sen": ["a b", "c d", "e f"], "wrong_sen": ["b a", None, " "]})
    with pytest.raises(
        GrowupError, match=r"data\.tsv: row 2, line 3 has no text in column 'wrong_sen'.*2 such"
    ):
        check_pairs(frame, path, ("sen", "wrong_sen"))
    with pytest.raises(GrowupError, match="has no column 'good'"):
        check_pairs(frame, path, ("good",))
    check_pairs(frame.iloc[:1], path, ("sen", "wrong_sen"))


def test_check_finite():
    ok = {"samples": {"t": [{"doc_id": 0, "filtered_resps": [(-1.0, False), (-2.0, False)]}]}}
    check_finite(ok, "m")
    bad = {"samples": {"t": [{"doc_id": 3, "filtered_resps": [(-1.0, False), (float("-inf"), False)]}]}}
    with pytest.raises(GrowupError, match=r"m: task 't' pair 3 has log-likelihoods \[-1.0, -inf\]"):
        check_finite(bad, "m")
