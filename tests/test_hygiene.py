"""The test suite's own rules and the package's freedom from import-time state: each check here
guards a way a test or module could pass while the behaviour it claims is broken."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib

from helpers import REPO

TESTS = REPO / "tests"


def declared_markers() -> list[str]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    return [m.split(":", 1)[0].strip() for m in config["tool"]["pytest"]["ini_options"]["markers"]]


def test_every_declared_marker_marks_a_test():
    """A marker no test carries selects nothing: `-m gpu` or `-m 'not full'` would pass vacuously."""
    sources = "\n".join(p.read_text(encoding="utf-8") for p in TESTS.glob("test_*.py"))
    unused = [m for m in declared_markers() if not re.search(rf"pytest\.mark\.{m}\b", sources)]
    assert unused == [], f"markers declared in pyproject.toml but used by no test: {unused}"


def test_no_test_imports_from_conftest():
    """conftest.py holds fixtures, which pytest injects; shared names live in helpers.py (importing
    conftest as a module runs it a second time, under another name)."""
    offenders = [
        p.name
        for p in [*TESTS.glob("*.py"), *(REPO / "benchmarks").glob("*.py")]
        if re.search(r"^\s*(from conftest import|import conftest)", p.read_text(encoding="utf-8"), re.M)
    ]
    assert offenders == []


def test_importing_growup_changes_no_process_state():
    """Importing every growup module leaves matplotlib's settings, the environment and the torch
    RNG as they were (each is set inside the call that needs it, then restored)."""
    code = """
import os, pkgutil, importlib
import matplotlib, torch
import growup
rc, env, rng = dict(matplotlib.rcParams), dict(os.environ), torch.get_rng_state().clone()
for m in pkgutil.walk_packages(growup.__path__, "growup."):
    importlib.import_module(m.name)
changed = [k for k in rc if rc[k] != matplotlib.rcParams[k]]
assert not changed, changed
assert dict(os.environ) == env
assert torch.equal(rng, torch.get_rng_state())
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_model_init_is_seeded_without_touching_the_global_rng():
    """init_model draws from a forked, seeded copy of the torch RNG: the same seed gives the same
    weights whatever was drawn before, and the caller's stream continues as if nothing happened."""
    import torch

    from growup.models.build import init_model
    from helpers import tiny_config

    config = tiny_config()
    first = init_model(config, 3, "num_layers").state_dict()
    torch.manual_seed(123)
    before = torch.get_rng_state().clone()
    second = init_model(config, 3, "num_layers").state_dict()
    assert torch.equal(before, torch.get_rng_state())
    assert all(torch.equal(first[k], second[k]) for k in first)
    other = init_model(config, 4, "num_layers").state_dict()
    assert any(not torch.equal(first[k], other[k]) for k in first)
