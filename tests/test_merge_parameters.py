"""Parameters without effect: derived from mergekit's registry (what a method declares, and what
its kernel reads when run), never from a list kept by hand; checked against the two cases the
authors' files hold and against methods planted here."""

from __future__ import annotations

import pytest
import torch
import yaml
from mergekit.merge_methods import BasePolicy, InputContract, PerNonBase, TensorGroup, merge_method

from growup import checks
from growup.mergekit_registry import GLOBAL, MODEL, method_table, unread_parameters


@pytest.fixture(scope="module")
def table():
    return method_table()


def test_the_authors_cases_are_found(table):
    multislerp, task_arithmetic, ties = table["multislerp"], table["task_arithmetic"], table["ties"]
    # undeclared: mergekit's plan resolves only declared parameters
    assert "not declare 'normalize'" in multislerp.no_effect("normalize", GLOBAL)
    assert "not declare 'int8_mask'" in multislerp.no_effect("int8_mask", GLOBAL)
    assert multislerp.no_effect("normalize_weights", GLOBAL) is None
    # declared, never read: the generalized task arithmetic sparsifies only for some methods
    assert "never reads it" in task_arithmetic.no_effect("density", MODEL)
    assert ties.no_effect("density", MODEL) is None and ties.no_effect("int8_mask", GLOBAL) is None
    assert task_arithmetic.no_effect("normalize", GLOBAL) is None
    # a parameter mergekit reads per merge has no effect given per model
    assert "per merge" in ties.no_effect("normalize", MODEL)
    assert table["linear"].no_effect("int8_mask", GLOBAL) is not None  # the authors' files give it too
    for name in ("tsv_m", "iso_c", "iso_cts"):
        assert table[name].probed and table[name].unread == () and table[name].origin.startswith("growup.")


def test_the_probe_finds_a_declared_parameter_the_kernel_never_reads():
    @merge_method(name="planted", contract=InputContract(base=BasePolicy.REQUIRED))
    def planted(
        group: TensorGroup, weight: PerNonBase[float] = 1.0, used: bool = True, ignored: float = 0.5
    ) -> torch.Tensor:
        base = group.base.tensor
        delta = sum(weight[e.id] * (e.tensor - base) for e in group.non_base)
        return base + delta if used else base

    @merge_method(name="only_for_matrices", contract=InputContract(base=BasePolicy.REQUIRED))
    def only_for_matrices(group: TensorGroup, scale: float = 2.0) -> torch.Tensor:
        base = group.base.tensor
        return base * scale if base.ndim == 2 else base  # read on one probe input only: still read

    assert unread_parameters(planted) == ["ignored"]
    assert unread_parameters(only_for_matrices) == []


def test_a_folder_of_merge_configs_warns_once_per_method_and_parameter(tmp_path, table):
    for subset in ("a_b", "a_c"):
        for method, extra in (("multislerp", {}), ("ties", {"density": 0.5})):
            config = {
                "merge_method": method,
                "models": [{"model": m, "parameters": {"weight": 1.0, **extra}} for m in ("x", "y")],
                "parameters": {"normalize": True, "int8_mask": True},
            }
            (tmp_path / f"{method}_{subset}.yaml").write_text(yaml.safe_dump(config))
    lines = checks.reference_warnings(tmp_path, table)
    assert len(lines) == 2, lines  # ties reads all three; multislerp neither of its two
    assert all(line.startswith("2 file(s)") and "multislerp" in line for line in lines)
    assert any("'normalize'" in line for line in lines) and any("'int8_mask'" in line for line in lines)
