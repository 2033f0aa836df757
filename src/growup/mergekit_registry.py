"""mergekit's merge-method registry as growup sees it, and which parameters each method reads.

The registry: mergekit's own methods, and the plugins of entry point group `growup.merge_methods`
(growup's own TSV-M, Iso-C and Iso-CTS in `growup.merge.methods`, or any installed package's),
each registered through mergekit's public `register` by `register_plugins`.

What a method reads is derived, never listed by hand. mergekit passes a method only the
parameters it declares (`plan.py` resolves declared names and drops the rest without a word),
reads a declared shared parameter from the config's `parameters` and never from a model's, and a
method may declare a parameter that its kernel never reads: the generalized task arithmetic reads
`density` only when it sparsifies, so `task_arithmetic` ignores it. `method_table` finds those by
running each kernel on small tensors once per parameter, with that parameter's value replaced by
an object that raises when used: a kernel that still returns never read it. The table is cached
per installed mergekit and plugin source, so a config load reads a small JSON file.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import logging
import os
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from importlib.metadata import PackageNotFoundError, entry_points, version
from pathlib import Path
from typing import Any

from growup.errors import GrowupError
from growup.io import atomic_write_text

log = logging.getLogger(__name__)

PLUGIN_GROUP = "growup.merge_methods"  # entry points: method name = "module:attribute"
MODEL, GLOBAL = "model", "global"  # where a config gives a parameter: one model's, or the merge's


@cache
def plugins() -> dict[str, str]:
    """Plugin methods by name, each as its "module:attribute", from installed package metadata
    (nothing is imported)."""
    return {ep.name: ep.value for ep in sorted(entry_points(group=PLUGIN_GROUP), key=lambda e: e.name)}


def register_plugins() -> None:
    """Register every plugin method in mergekit's registry (its public `register`), once."""
    from mergekit.merge_methods import MergeMethod, register, registered_methods

    known = {m.spec.name for m in registered_methods()}
    for ep in sorted(entry_points(group=PLUGIN_GROUP), key=lambda e: e.name):
        if ep.name in known:
            continue
        method = ep.load()
        if not isinstance(method, MergeMethod) or method.spec.name != ep.name:
            raise GrowupError(
                f"entry point {ep.name!r} = {ep.value!r} (group {PLUGIN_GROUP}) is not a mergekit merge "
                f"method named {ep.name!r}: build it with mergekit.merge_methods.merge_method(name=...)"
            )
        register(method)


@dataclass(frozen=True)
class MethodReads:
    """One registered method: its declared parameters (name -> mergekit scope: shared, input,
    non_base), those its kernel never reads, and where it comes from."""

    name: str
    origin: str  # "mergekit", or a plugin's "module:attribute"
    declared: Mapping[str, str]
    unread: tuple[str, ...]
    probed: bool  # False when the kernel could not be run on probe tensors (only declarations count)

    def reads(self, level: str) -> list[str]:
        """The parameters this method reads when given at `level` (MODEL or GLOBAL)."""
        return [
            p
            for p, scope in self.declared.items()
            if p not in self.unread and (level == GLOBAL or scope != "shared")
        ]

    def no_effect(self, parameter: str, level: str) -> str | None:
        """Why `parameter` given at `level` changes nothing in a merge, or None if it is read."""
        if parameter not in self.declared:
            return f"{self.name} does not declare {parameter!r}, so mergekit drops it"
        if level == MODEL and self.declared[parameter] == "shared":
            return (
                f"{self.name} reads {parameter!r} once per merge, from the config's parameters, not a model's"
            )
        if parameter in self.unread:
            return f"{self.name} declares {parameter!r} but its kernel never reads it"
        return None


def _cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "growup"


def _source_digest() -> str | None:
    """What the table depends on: mergekit's version and registry file, each plugin's module
    source, and this module's own probe; None when mergekit is not installed."""
    spec = importlib.util.find_spec("mergekit")
    if spec is None or not spec.submodule_search_locations:
        return None
    digest = hashlib.sha256(Path(__file__).read_bytes())
    registry = Path(next(iter(spec.submodule_search_locations))) / "merge_methods" / "registry.py"
    try:
        digest.update(f"{version('mergekit')}:{registry.stat().st_mtime_ns}".encode())
    except (OSError, PackageNotFoundError):
        digest.update(b"unknown mergekit")
    for name, value in plugins().items():
        digest.update(f"{name}={value}".encode())
        module = importlib.util.find_spec(value.split(":")[0])
        if module is not None and module.origin and Path(module.origin).is_file():
            digest.update(Path(module.origin).read_bytes())
    return digest.hexdigest()[:16]


@cache
def method_table() -> dict[str, MethodReads]:
    """Every registered method (mergekit's and the plugins) with what it reads: computed once per
    installed mergekit and plugin source, then read from the cache. Empty without mergekit."""
    key = _source_digest()
    if key is None:
        log.warning("mergekit is not installed: merge methods are checked when a merge runs")
        return {}
    cached = _cache_dir() / f"mergekit-registry-{key}.json"
    with contextlib.suppress(OSError, ValueError, TypeError):
        rows = json.loads(cached.read_text(encoding="utf-8"))
        return {r["name"]: MethodReads(**{**r, "unread": tuple(r["unread"])}) for r in rows}
    table = _derive()
    with contextlib.suppress(OSError):  # a read-only home: derive again next time
        atomic_write_text(
            cached, json.dumps([vars(m) | {"declared": dict(m.declared)} for m in table.values()])
        )
    return table


def _derive() -> dict[str, MethodReads]:
    import torch
    from mergekit.merge_methods import registered_methods

    register_plugins()
    origins = plugins()
    table = {}
    with torch.random.fork_rng(devices=[]):  # a random kernel (DARE) leaves the caller's RNG alone
        for method in sorted(registered_methods(), key=lambda m: m.spec.name):
            unread = unread_parameters(method)
            table[method.spec.name] = MethodReads(
                name=method.spec.name,
                origin=origins.get(method.spec.name, "mergekit"),
                declared={p.name: p.scope.value for p in method.spec.parameters},
                unread=tuple(unread or ()),
                probed=unread is not None,
            )
    return table


# --- the probe --------------------------------------------------------------------------------
class _Touched(Exception):
    """A probed kernel used the parameter it was given as a poisoned value."""


def _touch(self: Any, *args: Any, **kwargs: Any) -> Any:
    raise _Touched


# every way a kernel can use a value: truth, comparison, arithmetic, indexing, attributes, torch
_USES = (  # noqa: SIM905 - one word per use, kept compact
    "__bool__ __len__ __iter__ __getitem__ __contains__ __eq__ __ne__ __lt__ __le__ __gt__ __ge__ "
    "__float__ __int__ __index__ __complex__ __round__ __add__ __radd__ __sub__ __rsub__ __mul__ "
    "__rmul__ __truediv__ __rtruediv__ __floordiv__ __rfloordiv__ __mod__ __pow__ __rpow__ "
    "__neg__ __pos__ __abs__ __and__ __rand__ __or__ __ror__ __matmul__ __rmatmul__ __array__ "
    "__format__ __str__ __repr__ __hash__ __call__ __getattr__"
).split()
_Poison = type("_Poison", (), {name: _touch for name in _USES} | {"__torch_function__": classmethod(_touch)})


def _sample(parameter: Any) -> tuple[bool, Any]:
    """(ok, value): the parameter's default, or for a required one a plain value of its type."""
    from typing import Annotated, get_args, get_origin

    if not parameter.required:
        return True, parameter.default
    kind = parameter.value_type
    while get_origin(kind) is Annotated:
        kind = get_args(kind)[0]
    plain = {float: 0.5, int: 1, bool: True}
    return (kind in plain), plain.get(kind)


def _probe_groups(method: Any) -> Iterator[Any]:
    """Small random inputs the method's contract accepts: a weight matrix, a norm vector and a
    token embedding, with and without a base where the base is optional."""
    import torch
    from mergekit.merge_methods import BasePolicy, TensorGroup

    contract = method.spec.contract
    bases = {BasePolicy.REQUIRED: [True], BasePolicy.OPTIONAL: [True, False]}.get(contract.base, [False])
    generator = torch.Generator().manual_seed(0)
    for with_base in bases:
        count = max(2, contract.min_non_base or 0, contract.min_inputs - with_base)
        caps = [
            c for c in (contract.max_non_base, (contract.max_inputs or 1 << 30) - with_base) if c is not None
        ]
        count = min(count, *caps)
        if count < (contract.min_non_base or 0) or count + with_base < contract.min_inputs or count < 1:
            continue
        for shape, name, axis in (
            ((7, 5), "model.layers.0.mlp.down_proj.weight", None),
            ((7,), "model.norm.weight", None),
            ((11, 5), "model.embed_tokens.weight", 0),
        ):
            tensors = [torch.randn(shape, generator=generator) for _ in range(count + with_base)]
            yield TensorGroup.from_tensors(
                tensors,
                ids=[f"model{i}" for i in range(len(tensors))],
                base_index=0 if with_base else None,
                name=name,
                vocabulary_axis=axis,
            )


def _bind(spec: Any, group: Any, values: Mapping[str, Any]) -> dict[str, Any]:
    """Each parameter's value as the kernel receives it (per-input ones per input)."""
    from mergekit.merge_methods import ParameterScope, PerInputValues

    bound = {}
    for p in spec.parameters:
        value = p.validate(values[p.name])
        if p.scope == ParameterScope.SHARED:
            bound[p.name] = value
        else:
            entries = group.entries if p.scope == ParameterScope.INPUT else group.non_base
            bound[p.name] = PerInputValues([(e.id, value) for e in entries])
    return bound


def _call(method: Any, group: Any, bound: dict[str, Any], poisoned: str | None) -> bool:
    """Run the kernel once; True when it returned although `poisoned` (if any) was a poison."""
    from mergekit.merge_methods import BatchedMergeMethod, BatchOptions, GroupMergeMethod
    from mergekit.merge_methods.batching import prepare_batches

    try:
        if isinstance(method, BatchedMergeMethod):
            (prepared,) = prepare_batches([group], [bound], method.spec, BatchOptions(), input_dtypes=[None])
            batch, kwargs = prepared.pack(method.spec)
            if poisoned is not None:
                kwargs[poisoned] = _Poison()
            method.merge_batch(batch, **kwargs)
        elif isinstance(method, GroupMergeMethod):
            kwargs = dict(bound, **({poisoned: _Poison()} if poisoned is not None else {}))
            method.merge_group(group, **kwargs)
        else:
            return False
    except Exception:  # the poison was used, or the kernel failed: either way counted as read
        return False
    return True


def unread_parameters(method: Any) -> list[str] | None:
    """The declared parameters the kernel never reads on any probe input (None: not probed)."""
    spec = method.spec
    samples = {p.name: _sample(p) for p in spec.parameters}
    if not all(ok for ok, _ in samples.values()):
        return None
    values = {name: value for name, (_, value) in samples.items()}
    unread, probed = {p.name for p in spec.parameters}, False
    with warnings.catch_warnings():  # a kernel's warnings on random inputs are not the user's
        warnings.simplefilter("ignore")
        for group in _probe_groups(method):
            try:
                bound = _bind(spec, group, values)
            except Exception:  # a value the parameter's own validation refuses: not probed here
                continue
            if not _call(method, group, bound, None):
                continue
            probed = True
            unread = {name for name in unread if _call(method, group, bound, name)}
    if not probed:
        log.info("merge method %s could not be probed: only its declarations are checked", spec.name)
        return None
    return [p.name for p in spec.parameters if p.name in unread]
