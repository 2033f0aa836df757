"""Every study-config value that can be checked without running a job, checked at config load.

`check_config` runs before the DAG is built (`growup.study.load_config` and the workflow's
`workflow/rules/common.smk` call it once each), so a value that would fail hours into a study
fails at once: schema violations, batch divisibility, FineWeb-2 subsets, MultiBLiMP tasks,
mergekit methods, and run names. Each problem is one short line naming the file, the key, the
value and what is allowed.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import math
import os
from collections.abc import Iterable, Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from growup import hub
from growup.config import Study, load_schema
from growup.errors import ConfigError, GrowupError
from growup.io import atomic_write_text
from growup.paths import METHOD_NAME

log = logging.getLogger(__name__)

SCHEMA_FILE = "src/growup/schemas/config.schema.yaml"
MAX_VALUE = 60  # characters of a value shown in an error line


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= MAX_VALUE else f"<{type(value).__name__} of {len(value)}>"


def _key(parts: Iterable[Any]) -> str:
    return ".".join(str(p) for p in parts) or "<top level>"


def _rule(error: Any) -> str:
    """What the schema allows, in a few words."""
    schema = error.schema if isinstance(error.schema, dict) else {}
    v = error.validator
    if v == "enum":
        return f"allowed: {schema['enum']}"
    if v == "type":
        return f"allowed type: {schema['type']}"
    if v == "pattern":
        return f"allowed: strings matching {schema['pattern']}"
    bounds = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}
    if v in bounds:
        return f"allowed: {bounds[v]} {schema[v]}"
    if v in ("minItems", "maxItems", "minProperties"):
        return f"allowed: {v} {schema[v]}"
    if v == "uniqueItems":
        return "allowed: no item twice"
    return error.message if len(error.message) <= 2 * MAX_VALUE else error.message[: 2 * MAX_VALUE] + "..."


def schema_problems(raw: Mapping[str, Any]) -> list[str]:
    """One short line per schema violation: key, value, what is allowed (a missing required key
    by its full dotted name, not after the whole section's value)."""
    lines = []
    validator = jsonschema.Draft202012Validator(load_schema())
    errors = sorted(validator.iter_errors(dict(raw)), key=lambda e: list(map(str, e.absolute_path)))
    for error in errors:
        where = list(error.absolute_path)
        if error.validator == "required":
            for name in sorted(set(error.validator_value) - set(error.instance)):
                key = _key([*where, name])
                lines.append(f"config key {key!r}: missing; a required key (see {SCHEMA_FILE})")
        elif error.validator == "additionalProperties":
            known = sorted(error.schema.get("properties", {}))
            unknown = sorted(set(error.instance) - set(known))
            lines.append(f"config key {_key(where)!r}: unknown key(s) {unknown}; allowed: {known}")
        elif error.validator == "propertyNames":
            lines.append(f"config key {_key(where)!r}: key {error.instance!r} not allowed ({error.message})")
        else:
            lines.append(f"config key {_key(where)!r} = {_short(error.instance)}: {_rule(error)}")
    return lines


def problem_line(key: str, value: Any, problem: str, allowed: str) -> str:
    return f"config key {key!r} = {_short(value)}: {problem}; allowed: {allowed}"


def _batch_problems(raw: Mapping[str, Any]) -> Iterator[str]:
    t, gpus = raw["training"], raw["resources"]["gpus"]
    devices = sorted({max(count, 1) for count in gpus.values()})
    bad = [n for n in devices if t["global_batch"] % (t["micro_batch"] * n)]
    if bad:
        per_pass = t["micro_batch"] * math.lcm(*devices)
        yield problem_line(
            "training.global_batch",
            t["global_batch"],
            f"not a multiple of training.micro_batch ({t['micro_batch']}) x devices (resources.gpus: {bad})",
            f"multiples of {per_pass}",
        )


def few(items: Iterable[Any], show: int = 12) -> str:
    items = list(items)
    return f"{items}" if len(items) <= show else f"{items[:show]} ... ({len(items)} in all)"


def _card_configs(card: Path) -> list[str]:
    """`config_name`s of a Hub dataset card's YAML front matter (the dataset's subsets)."""
    text = card.read_text(encoding="utf-8")
    if not text.startswith("---"):
        return []
    meta = yaml.safe_load(text.split("---", 2)[1]) or {}
    return [c["config_name"] for c in meta.get("configs") or [] if "config_name" in c]


def fineweb2_subsets(hub_id: str, revision: str, config_root: str | None) -> tuple[list[str], str] | None:
    """The subsets of the FineWeb-2 dataset in force and where the list came from: the dataset
    card at the local Hub root, else the card in the Hugging Face cache; None when neither is
    at hand (no network at config load: `growup data fetch` then names a missing subset)."""
    root = hub.hub_root(config_root)
    card: Path | str | None
    if root is not None:
        card = root / hub_id / "README.md"
    else:
        from huggingface_hub import try_to_load_from_cache

        card = try_to_load_from_cache(hub_id, "README.md", revision=revision, repo_type="dataset")
    if not isinstance(card, (str, Path)) or not Path(card).is_file():
        log.info("no dataset card of %s at hand: FineWeb-2 subsets are checked when fetched", hub_id)
        return None
    return _card_configs(Path(card)), str(card)


@cache
def multiblimp_codes() -> tuple[str, ...]:
    """Language codes of lm-eval's MultiBLiMP tasks (`multiblimp_<code>`), from its task YAMLs
    (found without importing lm-eval)."""
    spec = importlib.util.find_spec("lm_eval")
    if spec is None or not spec.submodule_search_locations:
        return ()
    folder = Path(next(iter(spec.submodule_search_locations))) / "tasks" / "multiblimp"
    return tuple(sorted(p.stem.removeprefix("multiblimp_") for p in folder.glob("multiblimp_*.yaml")))


def _cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "growup"


@cache
def mergekit_methods() -> tuple[str, ...]:
    """Names in mergekit's merge-method registry. Importing it loads torch (about 1.5 s), so the
    list is cached per installed mergekit (version and registry file's mtime)."""
    from importlib.metadata import PackageNotFoundError, version

    spec = importlib.util.find_spec("mergekit")
    if spec is None or not spec.submodule_search_locations:
        log.warning("mergekit is not installed: merge methods are checked when a merge runs")
        return ()
    registry = Path(next(iter(spec.submodule_search_locations))) / "merge_methods" / "registry.py"
    try:
        key = f"mergekit-{version('mergekit')}-{registry.stat().st_mtime_ns}"
    except (OSError, PackageNotFoundError) as exc:  # an unusual install: ask the registry itself
        log.info("mergekit's registry file is not at hand (%s): not caching its methods", exc)
        key = None
    cached = _cache_dir() / f"{key}-methods.json" if key else None
    if cached is not None:
        with contextlib.suppress(OSError, ValueError):
            return tuple(json.loads(cached.read_text(encoding="utf-8")))
    from mergekit.merge_methods import registry as mk

    names = tuple(sorted(m.spec.name for m in mk.registered_methods()))
    if cached is not None:
        with contextlib.suppress(OSError):  # a read-only home: check again next time
            atomic_write_text(cached, json.dumps(names))
    return names


def _language_problems(raw: Mapping[str, Any]) -> Iterator[str]:
    data, ev = raw["data"], raw["evaluation"]
    languages = data["languages"]
    fw2 = data["fineweb2"]
    found = fineweb2_subsets(fw2["hub_id"], fw2["revision"], (raw.get("hub") or {}).get("root"))
    if found is not None:
        subsets, card = found
        for code, entry in languages.items():
            if entry["subset"] not in subsets:
                yield problem_line(
                    f"data.languages.{code}.subset",
                    entry["subset"],
                    f"no such subset of {fw2['hub_id']} (its card {card})",
                    few(subsets),
                )
    codes = multiblimp_codes()
    if codes:
        where = "lm-eval's tasks/multiblimp"
        for code, entry in languages.items():
            if entry["multiblimp"] not in codes:
                yield problem_line(
                    f"data.languages.{code}.multiblimp",
                    entry["multiblimp"],
                    f"no task multiblimp_{entry['multiblimp']} in {where}",
                    f"{len(codes)} codes, e.g. {list(codes[:6])}",
                )
        for i, code in enumerate(ev.get("multiblimp_languages") or []):
            if code not in codes:
                yield problem_line(
                    f"evaluation.multiblimp_languages[{i}]",
                    code,
                    f"no task multiblimp_{code} in {where}",
                    f"{len(codes)} codes, e.g. {list(codes[:6])}",
                )


def _merge_problems(raw: Mapping[str, Any]) -> Iterator[str]:
    merging = raw["merging"]
    known = mergekit_methods()
    for name, entry in merging["methods"].items():
        entry = entry or {}
        if not METHOD_NAME.fullmatch(name):
            yield problem_line(
                "merging.methods", name, "not a method name (it names a folder)", METHOD_NAME.pattern
            )
            continue
        method = entry.get("method") or name
        if known and method not in known:
            key = f"merging.methods.{name}" + (".method" if entry.get("method") else "")
            yield problem_line(key, method, "not a mergekit merge method", few(known, 20))


def check_config(raw: Mapping[str, Any], source: str) -> None:
    """Raise `ConfigError` listing, one short line each, every value of the resolved config `raw`
    (file `source`) that a job would reject: schema first, then what needs the whole config."""
    problems = schema_problems(raw)
    if not problems:
        try:
            Study.from_mapping(raw, source)  # its own cross-key checks (heads, schedules)
        except GrowupError as exc:
            raise ConfigError(f"{source}: {exc}") from None
        problems = [*_batch_problems(raw), *_language_problems(raw), *_merge_problems(raw)]
    if problems:
        raise ConfigError("\n".join(f"{source}: {p}" for p in problems))
