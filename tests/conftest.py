"""Shared fixtures: the Hub root (mirror or Hub), real token sequences, random tiny models.

Tests that need data find it through one setting, GROWUP_HUB_ROOT (.ci/run points it at
../shared/data/hub-mirror). Without a mirror they use the Hub if it answers, else skip with the
reason; under CI (CI=true) that skip is a failure, so CI can never pass by skipping data tests.
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Callable
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


def built_once(tmp_path_factory, name: str, build: Callable[[Path], Path]) -> Path:
    """`build(folder)` (it returns what it built, inside `folder`) run once per test session,
    however many xdist workers the session has: the first worker to ask builds under a file lock,
    the others wait for it, and each worker gets its own copy, since tests change what they are
    given (delete a figure, edit the config). Without xdist it builds straight into place."""
    own = tmp_path_factory.mktemp(name)
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return build(own)
    from filelock import FileLock

    shared = tmp_path_factory.getbasetemp().parent / f"built-{name}"
    built, failed = Path(f"{shared}.built"), Path(f"{shared}.failed")
    with FileLock(f"{shared}.lock"):
        if failed.exists():
            pytest.fail(f"building {name} failed in another worker: {failed.read_text()}")
        if not built.exists():
            shutil.rmtree(shared, ignore_errors=True)
            shared.mkdir()
            try:
                result = build(shared)
            except BaseException as exc:  # pytest.fail too: every other worker then fails at once
                failed.write_text(f"{type(exc).__name__}: {exc}"[:2000])
                raise
            built.write_text(str(result.relative_to(shared)))
        inside = built.read_text()
    shutil.copytree(shared / inside, own / inside, symlinks=True, dirs_exist_ok=True)
    return own / inside


@pytest.fixture(scope="session")
def mini_data(hub_root, tmp_path_factory) -> Path:
    """The mini study's prepared data (raw, tokenizer, packed), built once per test session."""
    return built_once(tmp_path_factory, "mini-data", prepare_mini_data)


@pytest.fixture(scope="session")
def study_repo(hub_root, tmp_path_factory) -> Path:
    """The mini study built end to end as a user would: a git clone of this repository, then
    `dvc repro` (Snakemake on 2 cores, then the artifact manifest). Built once per session."""
    from helpers import copy_repo, git_repo, run_tool

    prebuilt = os.environ.get("GROWUP_PREBUILT_STUDY")
    if prebuilt:  # for developers iterating on one test: a copy of a study built by this code
        if IN_CI:
            pytest.fail("GROWUP_PREBUILT_STUDY is set under CI: CI must build the study itself")
        dest = tmp_path_factory.mktemp("study") / "repo"
        shutil.copytree(prebuilt, dest, symlinks=True, ignore=shutil.ignore_patterns(".git", ".venv"))
        return git_repo(dest)

    def build(folder: Path) -> Path:
        repo = git_repo(copy_repo(folder / "repo"))
        run_tool(repo, "dvc", "repro")
        return repo

    return built_once(tmp_path_factory, "study", build)


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
    # lm-eval and threadpoolctl set environment variables when imported (os.environ.setdefault:
    # HF_XET_HIGH_PERFORMANCE, KMP_DUPLICATE_LIB_OK); a test importing them later would give its
    # subprocesses an environment the server was not started with, and each would run cold
    import lm_eval  # noqa: F401
    import threadpoolctl  # noqa: F401

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


# --- the order files are handed to xdist workers (make test: -n, --dist loadfile, no reorder) ---
# Two chains start at once, one per worker: the cluster module's slice (minutes of SLURM jobs, many
# of them waiting on the scheduler) and the study build (test_study, the first file that needs
# `study_repo`: built_once), which the cluster tests compare the slice with at the end. The other
# files follow, those that need no study before those that use it, each group longest first (from
# CI's --durations); unlisted files keep collection order.
CHAIN_FIRST = ("test_cluster.py", "test_study.py")
LONGEST = ("test_released.py", "test_cli.py", "test_evaluate.py", "test_own_study.py", "test_replicates.py")


def pytest_collection_modifyitems(config, items):
    if not os.environ.get("PYTEST_XDIST_WORKER"):  # a worker collects; the controller hands out
        return
    needs_study = {item.path.name for item in items if "study_repo" in getattr(item, "fixturenames", ())}
    first_seen: dict[str, int] = {}
    for i, item in enumerate(items):
        first_seen.setdefault(item.path.name, i)

    def rank(name: str) -> tuple[bool, bool, int, int]:
        long = LONGEST.index(name) if name in LONGEST else len(LONGEST)
        return (name not in CHAIN_FIRST, name in needs_study, long, first_seen[name])

    items.sort(key=lambda item: rank(item.path.name))
