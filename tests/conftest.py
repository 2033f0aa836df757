"""Shared fixtures: the Hub root (mirror or Hub), real token sequences, random tiny models.

Tests that need data find it through one setting, GROWUP_HUB_ROOT (.ci/run points it at
../shared/data/hub-mirror). Without a mirror they use the Hub if it answers, else skip with the
reason; under CI (CI=true) that skip is a failure, so CI can never pass by skipping data tests.
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest
import torch
from transformers import LlamaForCausalLM

import growup.models  # noqa: F401  (registers hyperllama)
from growup import hub
from helpers import IN_CI, REPO, prepare_mini_data, random_model, skip_or_fail


def _hub_reachable() -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "") not in {"", "0"}:
        return False
    try:
        socket.create_connection(("huggingface.co", 443), timeout=3).close()
        return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def hub_root() -> Path | None:
    """The local mirror in force (None = the real Hub); skip (fail in CI) when neither is reachable."""
    root = hub.hub_root()
    if root is not None:
        return root
    if _hub_reachable():
        return None
    skip_or_fail(
        f"no data: {hub.ENV_ROOT} is unset and the Hugging Face Hub is unreachable",
        f"in CI a data skip is an error: .ci/run must set {hub.ENV_ROOT}",
    )


@pytest.fixture(scope="session")
def real_tokens(hub_root: Path | None) -> torch.Tensor:
    """A (4, 48) batch of real token sequences: UTF-8 bytes of Swedish FineWeb-2 text (ids < 256)."""
    ds = hub.load_dataset("HuggingFaceFW/fineweb-2", name="swe_Latn", split="train")
    data = " ".join(ds[i]["text"] for i in range(4)).encode("utf-8")
    seqs = [list(data[i * 500 : i * 500 + 48]) for i in range(4)]
    return torch.tensor(seqs, dtype=torch.long)


@pytest.fixture
def tiny_model() -> LlamaForCausalLM:
    return random_model()


@pytest.fixture(scope="session")
def mini_study(hub_root):
    from growup.study import load_config

    return load_config(REPO / "config" / "config.yaml")


@pytest.fixture(scope="session")
def mini_data(hub_root, tmp_path_factory) -> Path:
    """The mini study's prepared data (raw, tokenizer, packed), built once per test session."""
    return prepare_mini_data(tmp_path_factory.mktemp("mini-data"))


@pytest.fixture(scope="session")
def study_repo(hub_root, tmp_path_factory) -> Path:
    """The mini study built end to end as a user would: a git clone of this repository, then
    `dvc repro` (Snakemake on 2 cores, then the artifact manifest). Built once per session."""
    from helpers import copy_repo, git_repo, run_tool

    dest = tmp_path_factory.mktemp("study") / "repo"
    prebuilt = os.environ.get("GROWUP_PREBUILT_STUDY")
    if prebuilt:  # for developers iterating on one test: a copy of a study built by this code
        if IN_CI:
            pytest.fail("GROWUP_PREBUILT_STUDY is set under CI: CI must build the study itself")
        shutil.copytree(prebuilt, dest, symlinks=True, ignore=shutil.ignore_patterns(".git", ".venv"))
        return git_repo(dest)
    repo = git_repo(copy_repo(dest))
    run_tool(repo, "dvc", "repro")
    return repo


# --- GROWUP_TEST_WARM=1: every `growup` the tests start runs in a warm worker (growup.warm) ------
WARM_LOG: list[Path] = []


@pytest.fixture(scope="session", autouse=True)
def warm_growup(tmp_path_factory):
    """With GROWUP_TEST_WARM=1, one warm server for the session: the tests' `growup` subprocesses
    (those that inherit this environment) are its clients, and every Snakemake run the tests start
    uses its own server however few its jobs (GROWUP_WARM=1). The summary says how many jobs
    workers ran; a subprocess whose environment differs runs cold, as the command always may."""
    if os.environ.get("GROWUP_TEST_WARM") != "1":
        yield None
        return
    from growup.warm import server as warm

    log = tmp_path_factory.mktemp("warm") / "warm.log"
    saved, threads = dict(os.environ), torch.get_num_threads()
    os.environ.update({**warm.job_environment(), warm.SWITCH_ENV: "1"})
    # the subprocesses now run with one thread (a local job's count); so does this process, so that
    # a test comparing an in-process result with a subprocess's compares the same reduction order
    torch.set_num_threads(1)
    launched = warm.start(log)
    assert launched is not None and warm.wait_serving(launched), log.read_text()
    os.environ[warm.SOCKET_ENV] = launched.socket
    WARM_LOG.append(log)
    try:
        yield launched
    finally:
        warm.stop(launched)
        os.environ.clear()
        os.environ.update(saved)
        torch.set_num_threads(threads)


def pytest_terminal_summary(terminalreporter):
    for log in WARM_LOG:
        text = log.read_text()
        jobs = text.count(" for client ")
        terminalreporter.write_line(
            f"GROWUP_TEST_WARM: warm workers ran {jobs} growup jobs (server log: {log})"
        )
