"""The artifact manifest: build order and hashes recorded, restored after a pull, bad files stale."""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import time
from pathlib import Path

import pytest

from growup import artifacts
from growup.cli import main
from growup.errors import GrowupError

DVC_YAML = """
stages:
  study:
    cmd: [snakemake --cores all, growup artifacts record]
    outs:
      - data: {persist: true}
      - checkpoints: {persist: true}
      - results/claims.md: {persist: true}
      - artifacts.json: {cache: false}
"""
# in build order: each file is an input of the ones after it
BUILT = [
    "data/raw/isl/data.parquet",
    "data/packed/isl/shard-00000.bin",
    "checkpoints/isl-1x/step-10/model.safetensors",
    "checkpoints/isl-1x/state/trainer.pt",
    "checkpoints/isl-1x/final/model.safetensors",
    "checkpoints/isl-1x/final/.snakemake_timestamp",
    "results/claims.md",
]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "dvc.yaml").write_text(DVC_YAML)
    (tmp_path / ".dvcignore").write_text("checkpoints/*/state/\n")
    for i, name in enumerate(BUILT):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f"{name} {i}".encode())
        os.utime(path, ns=(10**18 + i * 10**9,) * 2)
    return tmp_path


def mtimes(repo: Path, names: list[str]) -> list[int]:
    return [(repo / n).stat().st_mtime_ns for n in names]


def test_record_lists_tracked_files_in_build_order_without_ignored_ones(repo):
    manifest = json.loads(artifacts.record(repo).read_text())
    tracked = [n for n in BUILT if "/state/" not in n]
    assert [e["path"] for e in manifest["files"]] == tracked
    assert [e["rank"] for e in manifest["files"]] == list(range(len(tracked)))
    from dvc.fs import LocalFileSystem
    from dvc_data.hashfile.hash import file_md5

    for entry in manifest["files"]:  # hashlib's MD5 of the bytes, and DVC's own hash of the file
        data = (repo / entry["path"]).read_bytes()
        assert (
            entry["md5"]
            == hashlib.md5(data).hexdigest()
            == file_md5(str(repo / entry["path"]), LocalFileSystem())
        )
        assert entry["size"] == len(data)


def test_restore_stamps_pulled_files_in_build_order_after_the_checkout(repo):
    artifacts.record(repo)
    tracked = [n for n in BUILT if "/state/" not in n]
    shuffled = random.Random(0).sample(tracked, len(tracked))
    for i, name in enumerate(shuffled):  # what a pull leaves: arbitrary order
        os.utime(repo / name, ns=(2 * 10**18 - i,) * 2)
    checkout = repo / "config.yaml"
    checkout.write_text("x")
    assert artifacts.restore(repo) == {}
    stamps = mtimes(repo, tracked)
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    assert stamps[0] > checkout.stat().st_mtime_ns


def test_restore_marks_the_whole_unit_around_a_corrupt_file_stale(repo):
    artifacts.record(repo)
    (repo / "checkpoints/isl-1x/step-10/model.safetensors").write_bytes(b"corrupted")
    (repo / "results/claims.md").unlink()
    stale = artifacts.restore(repo)
    assert set(stale) == {"checkpoints/isl-1x"} and "differs" in stale["checkpoints/isl-1x"]
    assert not (repo / "results/claims.md").exists()  # absent (not pulled) stays absent
    run = sorted((repo / "checkpoints/isl-1x").rglob("*"))
    stamps = {p.stat().st_mtime_ns for p in run if p.is_file() and "state" not in p.parts}
    assert stamps == {artifacts.STALE_NS}
    upstream = repo / "data/packed/isl/shard-00000.bin"
    assert upstream.stat().st_mtime_ns > time.time_ns() - 10**9  # trusted: freshly stamped


def test_size_check_alone_misses_same_size_corruption_that_md5_catches(repo):
    artifacts.record(repo)
    path = repo / "data/raw/isl/data.parquet"
    path.write_bytes(bytes(reversed(path.read_bytes())))
    assert artifacts.restore(repo, verify=False) == {}
    assert set(artifacts.restore(repo)) == {"data/raw/isl"}
    assert path.stat().st_mtime_ns == artifacts.STALE_NS


def test_a_partly_present_unit_is_stale_and_a_wholly_absent_one_is_left_alone(repo):
    artifacts.record(repo)
    (repo / "checkpoints/isl-1x/step-10/model.safetensors").unlink()  # an interrupted pull
    for name in ("data/raw/isl/data.parquet",):
        (repo / name).unlink()  # the whole unit data/raw/isl not pulled
    assert set(artifacts.restore(repo)) == {"checkpoints/isl-1x"}
    assert (repo / "checkpoints/isl-1x/final/model.safetensors").stat().st_mtime_ns == artifacts.STALE_NS


def test_a_damaged_manifest_is_an_error_that_names_it(repo):
    (repo / "artifacts.json").write_text("{not json")
    with pytest.raises(GrowupError, match="artifacts.json.*not valid JSON"):
        artifacts.restore(repo)
    (repo / "artifacts.json").write_text('{"version": 1, "files": [{"path": "x"}]}')
    with pytest.raises(GrowupError, match="entries need"):
        artifacts.restore(repo)


@pytest.mark.parametrize(
    ("path", "unit"),
    [
        ("evals/merges/1x/ties/ekk+fao/final/x.json", "evals/merges/1x/ties/ekk+fao"),
        ("evals/isl-1x/20/multiblimp_isl.json", "evals/isl-1x"),
        ("checkpoints/init/final/config.json", "checkpoints/init"),
        ("merges/2x/ties/ekk+fao/model.safetensors", "merges/2x/ties/ekk+fao"),
        ("merges/2x/ties/ekk+fao.yaml", "merges/2x/ties/ekk+fao.yaml"),
        ("data/tokenizer/tokenizer.json", "data/tokenizer"),
        ("data/unimax.json", "data/unimax.json"),
        ("results/figures/merge_heatmaps.pdf", "results/figures/merge_heatmaps.pdf"),
    ],
)
def test_unit_of_a_file_is_the_snakemake_output_around_it(path, unit):
    assert artifacts.unit_of(path) == unit


def test_restore_without_a_manifest_says_how_to_make_one(repo):
    with pytest.raises(GrowupError, match="growup artifacts record"):
        artifacts.restore(repo)


def test_cli_record_and_restore_report_stale_units(repo, capsys):
    assert main(["artifacts", "record", "--repo", str(repo)]) == 0
    (repo / "results/claims.md").write_text("edited by hand")
    assert main(["artifacts", "restore", "--repo", str(repo)]) == 0
    assert "stale results/claims.md" in capsys.readouterr().out


def test_verify_reports_identical_differing_missing_and_unrecorded_files_by_output(repo, capsys):
    artifacts.record(repo)
    assert main(["artifacts", "verify", "--repo", str(repo)]) == 0
    first = capsys.readouterr().out
    assert re.search(r"^all\s+\d+\s+0\s+0\s+0\s+0$", first, re.M), first
    (repo / "results/claims.md").write_text("a stale manifest: this file changed after it was recorded")
    (repo / "checkpoints/isl-1x/step-10/model.safetensors").unlink()
    (repo / "data/new.json").write_text("{}")
    assert main(["artifacts", "verify", "--repo", str(repo)]) == 2
    out = capsys.readouterr()
    report = artifacts.verify(repo)
    assert report["results/claims.md"]["differing"] == ["results/claims.md"]
    assert report["checkpoints"]["missing"] == ["checkpoints/isl-1x/step-10/model.safetensors"]
    assert report["data"]["unrecorded"] == ["data/new.json"]
    assert "differing: results/claims.md" in out.out and "3 tracked files" in out.err
